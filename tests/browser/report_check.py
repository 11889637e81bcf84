#!/usr/bin/env python3
"""Opens an HTML page in headless Chromium over the DevTools protocol and prints, as JSON, what
a person would see: console errors and failed loads, every image (decoded size), every table
(id and row count), the findings list and the marked rows' text.

usage: report_check.py CHROMIUM PAGE.html   (exit 0 when the page loaded; the caller asserts)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # websocket-client

PROBE = r"""
JSON.stringify({
  images: [...document.images].map(i => ({src: i.getAttribute('src'), complete: i.complete,
                                          width: i.naturalWidth, height: i.naturalHeight})),
  tables: [...document.querySelectorAll('table')].map(t => ({id: t.id,
            rows: t.tBodies[0] ? t.tBodies[0].rows.length : 0,
            columns: [...t.querySelectorAll('thead th')].map(th => th.textContent)})),
  findings: [...document.querySelectorAll('.findings li')].map(li => li.textContent),
  marked: [...document.querySelectorAll('tr.marked')].map(tr => tr.textContent),
  title: document.title,
})
"""


def main():
    chromium, page = sys.argv[1], os.path.abspath(sys.argv[2])
    profile = tempfile.mkdtemp(prefix="iscp-chromium-")
    # Chromium's own log goes to a file: a pipe nobody reads would fill and stall it.
    log = open(os.path.join(profile, "chromium.log"), "w+")
    proc = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=log, text=True)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + 60
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if time.time() > deadline or proc.poll() is not None:
                log.seek(0)
                sys.exit(f"chromium did not start: {log.read()[-3000:]}")
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        ids = iter(range(1, 10**6))
        errors = []

        def send(method, **params):
            i = next(ids)
            ws.send(json.dumps({"id": i, "method": method, "params": params}))
            return i

        def wait(pred, what):
            end = time.time() + 60
            while time.time() < end:
                m = json.loads(ws.recv())
                note(m)
                if pred(m):
                    return m
            sys.exit(f"timed out waiting for {what}")

        def note(m):
            meth = m.get("method")
            p = m.get("params", {})
            if meth == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif meth == "Runtime.exceptionThrown":
                errors.append(p["exceptionDetails"].get("text", "exception"))
            elif meth == "Log.entryAdded" and p["entry"]["level"] == "error":
                errors.append(p["entry"]["text"] + " " + p["entry"].get("url", ""))
            elif meth == "Network.loadingFailed":
                errors.append("failed to load: " + p.get("errorText", ""))

        for m in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            i = send(m)
            wait(lambda r, i=i: r.get("id") == i, m)
        send("Page.navigate", url="file://" + page)
        wait(lambda r: r.get("method") == "Page.loadEventFired", "the page to load")
        # Late console messages and failed loads arrive after the load event.
        ws.settimeout(1.0)
        try:
            while True:
                note(json.loads(ws.recv()))
        except websocket.WebSocketTimeoutException:
            pass
        ws.settimeout(60)
        i = send("Runtime.evaluate", expression=PROBE, returnByValue=True)
        r = wait(lambda r: r.get("id") == i, "the probe")
        seen = json.loads(r["result"]["result"]["value"])
        seen["errors"] = errors
        print(json.dumps(seen))
        ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
