#!/usr/bin/env python3
"""tests/api-load.py -- clients for tests/61-api-load.bats (loopback only).

  api-load.py load PORT CLIENTS ROUNDS GOAL_FILE
      CLIENTS threads start together; each makes ROUNDS requests, a mix of
      system and batch scoreboard reads, submits of its own small table and
      ticks (no_codex=true), each on a new connection.  Prints one JSON
      object: requests, errors (each "status path"), max_seconds,
      statuses.
  api-load.py halfopen PORT N READY_FILE
      opens N connections that send half a request ("GET /health HTTP/1.1"
      and a Host header, never the blank line), writes READY_FILE and
      holds them until READY_FILE is removed (at most 120 s).
"""
import http.client
import json
import os
import socket
import sys
import threading
import time


def load(port, clients, rounds, goal):
    barrier = threading.Barrier(clients)
    lock = threading.Lock()
    res = {"requests": 0, "errors": [], "max_seconds": 0.0, "statuses": {}}

    def one(method, path, body=None):
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            c.request(method, path, body=body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            st = r.status
            c.close()
        except Exception as e:  # a refused or reset connection is an error
            st, data = 0, str(e).encode()
        dt = time.monotonic() - t0
        with lock:
            res["requests"] += 1
            res["max_seconds"] = max(res["max_seconds"], dt)
            res["statuses"][str(st)] = res["statuses"].get(str(st), 0) + 1
            if st != 200:
                res["errors"].append("%d %s %s" % (st, path, data[:200]))
        return data

    def client(i):
        barrier.wait()
        batch = None
        for k in range(rounds):
            kind = (i + k) % 4
            if kind == 0:
                lt = {"batch_goal_summary": goal,
                      "jobs": [{"job_id": "j%d_%d" % (i, k),
                                "working_directory": ".",
                                "steps": [{"step_id": "s", "prompt": "x"}]}]}
                out = one("POST", "/v1/batches", json.dumps(lt).encode())
                try:
                    batch = json.loads(out).get("batch_id", batch)
                except ValueError:
                    pass
            elif kind == 1:
                one("POST", "/v1/tick?no_codex=true")
            elif kind == 2 and batch:
                one("GET", "/v1/batches/%s/scoreboard" % batch)
            else:
                one("GET", "/v1/scoreboards/system")

    ts = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    res["errors"] = res["errors"][:20]
    print(json.dumps(res))


def halfopen(port, n, ready):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            pass  # refused or closed by the server: that is its limit
        socks.append(s)
    with open(ready, "w") as f:
        f.write("%d\n" % len(socks))
    end = time.monotonic() + 120
    while os.path.exists(ready) and time.monotonic() < end:
        time.sleep(0.1)
    for s in socks:
        s.close()


if __name__ == "__main__":
    if sys.argv[1] == "load":
        with open(sys.argv[5]) as f:
            goal = f.read().strip()
        load(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), goal)
    elif sys.argv[1] == "halfopen":
        halfopen(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("usage: api-load.py load|halfopen ...")
