"""Load generator for `seer serve`: 1, 4 and 16 concurrent clients (or
--clients), each sending streamed completion requests back to back, against
a server this script starts. Reports requests/s, total generated tokens/s,
time to first token and inter-token latency (p50, p99), failed requests,
and the gain from batching (tokens/s at the most clients / at one).

Python's standard library only:

    cargo build --release
    python3 scripts/bench/serve_load.py --model runs/demo/model
"""
import argparse
import http.client
import json
import statistics
import subprocess
import threading
import time


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def one_request(host, port, body, record):
    """One streamed completion; appends its figures to `record`."""
    started = time.perf_counter()
    first = None
    arrivals = []
    tokens = 0
    try:
        conn = http.client.HTTPConnection(host, port, timeout=300)
        conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}: {response.read()[:200]!r}")
        done = False
        while True:
            line = response.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices", []):
                if choice.get("text"):
                    now = time.perf_counter()
                    if first is None:
                        first = now
                    arrivals.append(now)
        conn.close()
        if not done:
            raise RuntimeError("the stream ended without [DONE]")
        record.append({
            "ok": True,
            "ttft": first - started if first else float("nan"),
            "gaps": [b - a for a, b in zip(arrivals, arrivals[1:])],
            "tokens": tokens,
        })
    except Exception as e:  # a failed request is counted, not fatal
        record.append({"ok": False, "error": str(e)})


def run_level(host, port, clients, requests_each, prompt, max_tokens):
    records = []
    lock = threading.Lock()

    def client(index):
        for r in range(requests_each):
            body = json.dumps({
                "model": MODEL_NAME, "prompt": prompt, "max_tokens": max_tokens, "stream": True,
                "seed": index * 1000 + r, "stream_options": {"include_usage": True},
            })
            mine = []
            one_request(host, port, body, mine)
            with lock:
                records.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ok = [r for r in records if r["ok"]]
    gaps = [g for r in ok for g in r["gaps"]]
    ttfts = [r["ttft"] for r in ok]
    tokens = sum(r["tokens"] for r in ok)
    return {
        "clients": clients,
        "requests": len(records),
        "failed": len(records) - len(ok),
        "wall_s": wall,
        "requests_per_s": len(ok) / wall,
        "tokens_per_s": tokens / wall,
        "ttft_p50_ms": 1000 * percentile(ttfts, 50),
        "ttft_p99_ms": 1000 * percentile(ttfts, 99),
        "itl_p50_ms": 1000 * percentile(gaps, 50),
        "itl_p99_ms": 1000 * percentile(gaps, 99),
        "errors": sorted({r["error"] for r in records if not r["ok"]})[:3],
    }


def main():
    global MODEL_NAME
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="text model folder to serve")
    parser.add_argument("--seer", default="target/release/seer")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--requests", type=int, default=4, help="requests per client at each level")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--prompt", default="ROMEO:\n")
    parser.add_argument("--max-batch", type=int, default=16, help="the server's --max-batch (1: no batching)")
    args = parser.parse_args()

    server = subprocess.Popen(
        [args.seer, "serve", "--model", args.model, "--port", "0", "--max-batch", str(args.max_batch)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = server.stdout.readline()
        address = line.split("http://")[1].split()[0]
        host, port = address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port))
        conn.request("GET", "/v1/models")
        MODEL_NAME = json.loads(conn.getresponse().read())["data"][0]["id"]
        # Warm-up.
        run_level(host, int(port), 1, 1, args.prompt, args.max_tokens)
        results = []
        for clients in [int(c) for c in args.clients.split(",")]:
            result = run_level(host, int(port), clients, args.requests, args.prompt, args.max_tokens)
            results.append(result)
            print(
                f"{clients:>3} clients: {result['requests']} requests, {result['failed']} failed, "
                f"{result['requests_per_s']:.2f} req/s, {result['tokens_per_s']:.0f} tokens/s, "
                f"TTFT p50 {result['ttft_p50_ms']:.1f} ms p99 {result['ttft_p99_ms']:.1f} ms, "
                f"ITL p50 {result['itl_p50_ms']:.2f} ms p99 {result['itl_p99_ms']:.2f} ms"
                + (f"; errors: {result['errors']}" if result["errors"] else ""),
                flush=True,
            )
        if len(results) > 1:
            gain = results[-1]["tokens_per_s"] / results[0]["tokens_per_s"]
            print(f"batching gain: {gain:.2f}x total tokens/s at {results[-1]['clients']} clients vs {results[0]['clients']}")
        print(json.dumps(results))
    finally:
        server.terminate()
        server.wait()


MODEL_NAME = None

if __name__ == "__main__":
    main()
