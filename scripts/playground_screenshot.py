"""Screenshot of the web playground for the README: starts `seer serve`
and chromedriver, drives headless Chromium through the WebDriver protocol
(standard library only), sends a chat message and asks for pictures, then
saves the page as a PNG.

    python3 scripts/playground_screenshot.py --model runs/demo/model \
        --image-model assets/shapes-model -o assets/readme/playground.png
"""
import argparse
import base64
import json
import subprocess
import time
import urllib.request


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["value"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--image-model", required=True)
    parser.add_argument("--seer", default="target/release/seer")
    parser.add_argument("--message", default="ROMEO:")
    parser.add_argument("--image-prompt", default="a red circle")
    parser.add_argument("-o", "--out", default="playground.png")
    args = parser.parse_args()
    server = subprocess.Popen([args.seer, "serve", "--model", args.model, "--image-model", args.image_model,
                               "--port", "0"], stdout=subprocess.PIPE, text=True)
    driver = subprocess.Popen(["chromedriver", "--port=9515"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = server.stdout.readline().split("http://")[1].split()[0]
        time.sleep(1)
        wd = "http://127.0.0.1:9515"
        session = call(wd, "POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,760"]}}}})["sessionId"]
        s = f"/session/{session}"
        run = lambda script: call(wd, "POST", s + "/execute/sync", {"script": script, "args": []})
        call(wd, "POST", s + "/url", {"url": "http://" + url})
        time.sleep(1)
        run("document.getElementById('chat-input').value = %s;"
            "document.getElementById('max_tokens').value = '120';"
            "document.getElementById('seed').value = '1';"
            "document.getElementById('chat-send').click();" % json.dumps(args.message))
        while "finished" not in run("return document.getElementById('chat-status').innerText;"):
            time.sleep(0.2)
        run("document.getElementById('image-prompt').value = %s;"
            "document.getElementById('image-seed').value = '1';"
            "document.getElementById('image-send').click();" % json.dumps(args.image_prompt))
        while "picture" not in run("return document.getElementById('image-status').innerText;"):
            time.sleep(0.2)
        png = base64.b64decode(call(wd, "GET", s + "/screenshot"))
        with open(args.out, "wb") as f:
            f.write(png)
        call(wd, "DELETE", s)
        print(f"wrote {args.out}")
    finally:
        driver.terminate()
        server.terminate()


if __name__ == "__main__":
    main()
