//! The wire codec of `/bacalhau/rpc/1`, the one request/response protocol of a node.
//!
//! One request per stream. A request is the application protocol name and a payload:
//! `u16 name length | name (UTF-8) | u32 payload length | payload`. A response is a status
//! byte (0 = ok, 1 = error) then `u32 length | bytes` (the reply payload, or a UTF-8 error
//! message from the remote handler). All integers big-endian. Lengths are checked against the
//! configured maximum before anything is allocated, so a peer cannot make us buffer more.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;

/// The protocol id negotiated on the stream.
pub const RPC_PROTOCOL: StreamProtocol = StreamProtocol::new("/bacalhau/rpc/1");

/// Longest application protocol name accepted.
pub const MAX_PROTOCOL_NAME: usize = 256;

/// An application request: which application protocol, and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcRequest {
    /// Application protocol name, e.g. `/bacalhau/compute/1`.
    pub protocol: String,
    /// The payload.
    pub data: Vec<u8>,
}

/// The reply: the payload, or the error message of the remote handler.
pub type RpcResponse = Result<Vec<u8>, String>;

/// Length-prefixed codec with a size bound.
#[derive(Debug, Clone)]
pub struct RpcCodec {
    max_size: usize,
}

impl RpcCodec {
    /// A codec refusing payloads above `max_size` bytes.
    pub fn new(max_size: usize) -> Self {
        Self { max_size }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

async fn read_u32<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u32> {
    let mut buf = [0u8; 4];
    io.read_exact(&mut buf).await?;
    Ok(u32::from_be_bytes(buf))
}

async fn read_bytes<T: AsyncRead + Unpin>(
    io: &mut T,
    len: usize,
    max: usize,
) -> io::Result<Vec<u8>> {
    if len > max {
        return Err(invalid(format!(
            "message of {len} bytes exceeds the maximum of {max}"
        )));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

fn len_u32(len: usize) -> io::Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| invalid(format!("message of {len} bytes is too large")))
}

impl request_response::Codec for RpcCodec {
    type Protocol = StreamProtocol;
    type Request = RpcRequest;
    type Response = RpcResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<RpcRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut len = [0u8; 2];
        io.read_exact(&mut len).await?;
        let name = read_bytes(io, usize::from(u16::from_be_bytes(len)), MAX_PROTOCOL_NAME).await?;
        let protocol =
            String::from_utf8(name).map_err(|_| invalid("protocol name is not UTF-8".into()))?;
        let len = read_u32(io).await? as usize;
        let data = read_bytes(io, len, self.max_size).await?;
        Ok(RpcRequest { protocol, data })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<RpcResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut status = [0u8; 1];
        io.read_exact(&mut status).await?;
        let len = read_u32(io).await? as usize;
        let body = read_bytes(io, len, self.max_size).await?;
        match status[0] {
            0 => Ok(Ok(body)),
            1 => Ok(Err(String::from_utf8_lossy(&body).into_owned())),
            other => Err(invalid(format!("unknown response status {other}"))),
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: RpcRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let name = req.protocol.as_bytes();
        if name.len() > MAX_PROTOCOL_NAME {
            return Err(invalid(format!(
                "protocol name longer than {MAX_PROTOCOL_NAME} bytes"
            )));
        }
        if req.data.len() > self.max_size {
            return Err(invalid(format!(
                "request of {} bytes exceeds the maximum of {}",
                req.data.len(),
                self.max_size
            )));
        }
        // Bounded by MAX_PROTOCOL_NAME above, so the cast cannot truncate.
        io.write_all(&(name.len() as u16).to_be_bytes()).await?;
        io.write_all(name).await?;
        io.write_all(&len_u32(req.data.len())?).await?;
        io.write_all(&req.data).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: RpcResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let (status, body) = match res {
            Ok(data) => (0u8, data),
            Err(msg) => (1u8, msg.into_bytes()),
        };
        if body.len() > self.max_size {
            return Err(invalid(format!(
                "response of {} bytes exceeds the maximum of {}",
                body.len(),
                self.max_size
            )));
        }
        io.write_all(&[status]).await?;
        io.write_all(&len_u32(body.len())?).await?;
        io.write_all(&body).await?;
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use request_response::Codec;

    #[test]
    fn request_and_response_round_trip() {
        let mut codec = RpcCodec::new(1024);
        let req = RpcRequest {
            protocol: "/bacalhau/compute/1".into(),
            data: b"hello".to_vec(),
        };
        let mut buf = Cursor::new(Vec::new());
        block_on(codec.write_request(&RPC_PROTOCOL, &mut buf, req.clone())).unwrap();
        let mut rd = Cursor::new(buf.into_inner());
        assert_eq!(
            block_on(codec.read_request(&RPC_PROTOCOL, &mut rd)).unwrap(),
            req
        );

        for res in [Ok(b"reply".to_vec()), Err("handler failed".to_string())] {
            let mut buf = Cursor::new(Vec::new());
            block_on(codec.write_response(&RPC_PROTOCOL, &mut buf, res.clone())).unwrap();
            let mut rd = Cursor::new(buf.into_inner());
            assert_eq!(
                block_on(codec.read_response(&RPC_PROTOCOL, &mut rd)).unwrap(),
                res
            );
        }
    }

    #[test]
    fn oversized_payload_is_refused_before_allocation() {
        let mut codec = RpcCodec::new(4);
        let mut wire = vec![0, 1, b'p'];
        wire.extend_from_slice(&u32::MAX.to_be_bytes());
        let err = block_on(codec.read_request(&RPC_PROTOCOL, &mut Cursor::new(wire))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
