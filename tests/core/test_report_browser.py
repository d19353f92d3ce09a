"""The generated report in a real browser (headless Chromium, DevTools protocol over --remote-debugging-pipe: no extra
dependency): every image loads (naturalWidth > 0), no console errors, every local link resolves, and at 600 px the
pages do not overflow sideways while the verdict column stays in view. Skips when Chromium is not installed
(`make browser` installs it)."""

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from mlreads import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed: `make browser` installs it (Debian package chromium)"
)


class Browser:
    """A headless Chromium driven over the DevTools pipe (fd 3: commands in, fd 4: replies and events out)."""

    def __init__(self, profile: Path):
        self.to_r, self.to_w = os.pipe()
        self.from_r, self.from_w = os.pipe()
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-extensions", "--allow-file-access-from-files", f"--user-data-dir={profile}",
                 "--remote-debugging-pipe", "about:blank"]  # fmt: skip

        def child_fds():  # in the child: our pipe ends become fds 3 and 4, the only inheritable extras
            into, out_of = os.dup(self.to_r), os.dup(self.from_w)  # copies first: 3 or 4 may be a pipe end itself
            os.dup2(into, 3)
            os.dup2(out_of, 4)

        # close_fds=False keeps 3 and 4; every other descriptor of ours is close-on-exec (os.pipe, os.dup)
        self.proc = subprocess.Popen([CHROMIUM, *flags], close_fds=False, preexec_fn=child_fds,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        os.close(self.to_r)
        os.close(self.from_w)
        self.buf, self.next_id, self.events = b"", 0, []
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)

    def _read(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_r], [], [], left)[0]:
                return None
            chunk = os.read(self.from_r, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: bool = False, timeout: float = 60, **params) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._read(deadline - time.monotonic())
            if reply is None:
                break
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(f"no reply to {method}")

    def wait_event(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    return self.events.pop(i)
            e = self._read(deadline - time.monotonic())
            if e is not None:
                self.events.append(e)
        raise TimeoutError(f"no {method} event")

    def open(self, url: str) -> None:
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        self.call("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                           awaitPromise=True)  # fmt: skip
        return result["result"].get("value")

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(str(p.get("exceptionDetails", {}).get("text")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(str(p.get("args")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_w)
        os.close(self.from_r)


PAGE_FACTS = """(() => {
  const verdict = document.querySelector('td.v');
  return {
    images: [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
    links: [...document.links].map(a => a.href),
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    verdictRight: verdict ? verdict.getBoundingClientRect().left + 40 : null,
  };
})()"""


def test_report_in_a_real_browser(toy, tmp_path, monkeypatch, fake_publish):
    monkeypatch.setattr("mlreads.core.run.registry.load_all", lambda: {toy.id: toy})
    runs, out, results = tmp_path / "runs", tmp_path / "report", tmp_path / "results"
    assert cli.main(["run", "toytest/threshold", "--out", str(runs)]) == 0
    assert cli.main(["run", "toytest/threshold", "--out", str(runs), "--budget", "quick", "--set", "value=3"]) == 0
    fake_publish(results, "toytest/threshold", "quick", 0, "fail", 0.5)
    assert cli.main(["report", "--runs", str(runs), "--out", str(out), "--results", str(results)]) == 0

    browser = Browser(tmp_path / "profile")
    try:
        browser.call("Emulation.setDeviceMetricsOverride", session=True, width=600, height=900, deviceScaleFactor=1,
                     mobile=False)  # fmt: skip
        todo, seen, n_images = [(out / "index.html").resolve().as_uri()], set(), 0
        while todo:
            url = todo.pop()
            if url in seen:
                continue
            seen.add(url)
            browser.open(url)
            facts = browser.js(PAGE_FACTS)
            errors = browser.errors()
            assert errors == [], (url, errors)
            for img in facts["images"]:
                assert img["ok"], f"{url}: image {img['src']} did not load"
            n_images += len(facts["images"])
            assert facts["overflow"] <= 0, f"{url} overflows a 600 px window by {facts['overflow']} px"
            if facts["verdictRight"] is not None:
                assert facts["verdictRight"] <= 600, f"{url}: the verdict column is out of view at 600 px"
            for link in facts["links"]:
                parsed = urlparse(link)
                if parsed.scheme == "https":
                    continue  # the papers' pages: not fetched offline
                assert parsed.scheme == "file", link
                target = Path(unquote(parsed.path))
                assert target.exists() and target.resolve().is_relative_to(out.resolve()), f"{url}: dead link {link}"
                todo.append(target.resolve().as_uri())
        assert len(seen) >= 4 and n_images >= 2, (seen, n_images)
    finally:
        browser.close()
