"""Headless Chromium for the web UI's tests and screenshots: Debian's `chromium` driven by its
`chromedriver` through Selenium (no browser download), console log collected.

`browser_missing()` says why no browser can run here (None when one can); `UiBrowser` wraps the
driver with deadline-bounded waits and the console log."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

VIEWPORT = (1280, 800)


def browser_missing() -> str | None:
    """Why the browser tests cannot run, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for binary, package in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if shutil.which(binary) is None:
            return f"no `{binary}` on PATH: run scripts/install_browser.sh (Debian {package})"
    return None


class UiBrowser:
    """One headless Chromium window with a 1280x800 viewport."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        options = Options()
        options.binary_location = str(shutil.which("chromium"))
        # an own profile folder, removed by close() (Chromium's default ones stay in /tmp)
        self.profile = tempfile.mkdtemp(prefix="bacalhau-ui-test-chromium-")
        for arg in (f"--user-data-dir={self.profile}", "--headless=new", "--no-sandbox",
                    "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                    "--disable-extensions",
                    f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(
            service=Service(executable_path=str(shutil.which("chromedriver"))), options=options)
        # The viewport itself (not the window) is what screenshots show.
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1,
            "mobile": False})
        self.console: list[dict[str, Any]] = []

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def open(self, url: str) -> None:
        self.driver.get(url)

    def collect_console(self) -> list[dict[str, Any]]:
        """Everything the page logged since the last call, also kept in `self.console`."""
        entries = list(self.driver.get_log("browser"))
        self.console.extend(entries)
        return entries

    def console_errors(self) -> list[dict[str, Any]]:
        self.collect_console()
        return [e for e in self.console if e.get("level") == "SEVERE"]

    def wait(self, condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
        """Poll `condition` (which may raise while the page changes) until truthy."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except Exception as exc:  # the element may be replaced between two looks
                last = exc
            time.sleep(0.1)  # poll interval of a deadline-bounded wait
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what or condition}: last error {last!r}; "
            f"page text: {self.text('body')[:1500]!r}")

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str) -> str:
        try:
            return str(self.find(css).text)
        except Exception:
            return ""

    def wait_text(self, css: str, expected: str, timeout: float = 20.0) -> str:
        return self.wait(lambda: expected in (t := self.text(css)) and t, timeout,
                         what=f"{expected!r} in {css}")

    def click(self, css: str, timeout: float = 20.0) -> None:
        self.wait(lambda: self.find(css).click() is None, timeout, what=f"click on {css}")

    def screenshot(self, path: str) -> None:
        self.driver.save_screenshot(path)
