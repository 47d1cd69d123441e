#!/usr/bin/env python3
"""Mock of the OpenAI Responses API (SSE) for driving the real Codex CLI offline.

Python 3 stdlib only.  Listens on 127.0.0.1 only.  See
shared/reference/codex-cli.md sections 4 and 9 for the protocol codex 0.171.0
speaks and expects.

Usage:
    mock_model_server.py [--port N] [--port-file FILE] [--log FILE]
                         [--scenario NAME[:ARG]] [--hang-max SECONDS]

Codex sends ``POST {base_url}/responses`` (``/v1/responses`` with
``base_url = "http://127.0.0.1:PORT/v1"``).  Any path ending in ``/responses``
is served; every other request gets a 404.  Every request is logged.

Scenario selection is per request, so one server can serve many concurrent
tests: the *last user prompt* of the request's ``input`` (context messages such
as ``<environment_context>`` are skipped) is searched for a marker
``MOCK:<name>`` or ``MOCK:<name>:<arg>``; the last marker in that message wins.
Without a marker the server-wide ``--scenario`` applies (default ``ok``).

Scenarios:
    ok                 final message = a valid Run Report, status "ok"; its
                       summary says how many earlier user prompts the input held
    report_failed      valid Run Report with status "failed"
    needs_attention    valid Run Report with status "needs_attention"
    not_json           final message is plain text
    schema_invalid     JSON object missing required Run Report keys
    reply:TEXT         final message = TEXT (rest of the marker, no spaces)
    minimal            two-frame minimal stream (no usage)
    reasoning          a reasoning item, then the ok report
    http500 / http400 / http429   that HTTP status with a JSON error body
    rate_limit[:S]     HTTP 429, error type rate_limit_exceeded, header
                       Retry-After: S (default 20): codex prints "exceeded
                       retry limit, last status: 429 Too Many Requests"
    usage_limit[:S]    HTTP 429, error type usage_limit_reached with
                       resets_at = now + S (default 60) and resets_in_seconds
                       S: codex prints "You've hit your usage limit. ... try
                       again at <time in its TZ>"
    flaky[:N]          first N (default 1) requests carrying this same prompt
                       text get HTTP 500, later ones the ok report (counted
                       per server lifetime: put a unique token in the prompt;
                       codex needs request_max_retries >= N to get through)
    failed_event       a response.failed event
    drop               stream cut mid-message, no response.completed
    hang[:S]           read the request, then send nothing at all (not even
                       status/headers) until the client goes away, S seconds
                       (default and cap: --hang-max, 600) pass, or the server
                       stops.  codex's stream_idle_timeout_ms does NOT cover
                       this wait: only an outside timeout ends it
    hang_sse[:S]       same, but after 200 + SSE headers: codex fails by itself
                       after stream_idle_timeout_ms ("idle timeout waiting
                       for SSE")
    slow[:S]           wait S seconds (default 2, max 120) before sending any
                       byte, then the ok report (a wait before the status line
                       is not cut short by stream_idle_timeout_ms)
    write_file:NAME    tool call: exec_command writing NAME in the cwd; once the
                       tool output comes back, a Run Report listing NAME in
                       files_written (status "failed" if the command failed)
    patch_file:NAME    same, through an apply_patch heredoc (file_change item)

Log (--log): one JSON object per line and request, written when the request
ends: ts, method, path, status, scenario, scenario_arg, headers (a useful
subset; never Authorization, only auth_present), thread_id (codex's thread-id
header), input_items, user_messages, prior_prompts (real user prompts before
the last one), last_prompt, tool_outputs ({call_id: output} after the last
prompt), body (the parsed request), duration_s, and per scenario tool_call,
call_id, hang_end ("client_gone" | "deadline" | "server_stop"), client_gone.

Prints MOCK_PORT=<n> on stdout once listening; the port file is written
atomically (rename) at the same moment and removed on exit.
Exits 0 on SIGTERM/SIGINT/SIGHUP.
"""

import argparse
import hashlib
import json
import os
import re
import select
import shlex
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
MARKER_RE = re.compile(r"MOCK:([A-Za-z0-9_]+)(?::(\S+))?")
SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._/-]*$")
# User messages codex injects itself; they are not prompts.
CONTEXT_PREFIXES = (
    "<environment_context",
    "<user_instructions",
    "<skills_instructions",
    "<turn_aborted",
    "<user_shell_command",
    "# AGENTS.md instructions",
)
LOGGED_HEADERS = (
    "accept", "content-type", "content-encoding", "content-length",
    "originator", "user-agent", "session-id", "thread-id",
    "x-client-request-id", "x-codex-turn-metadata", "x-codex-window-id",
    "x-codex-beta-features", "upgrade", "connection",
)
KNOWN = {
    "ok", "report_failed", "needs_attention", "not_json", "schema_invalid",
    "reply", "minimal", "reasoning", "http500", "http400", "http429", "flaky",
    "rate_limit", "usage_limit",
    "failed_event", "drop", "hang", "hang_sse", "slow", "write_file", "patch_file",
}

STOP = threading.Event()


# ------------------------------------------------------------------ input --
def _content_text(item):
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts = []
    if isinstance(content, list):
        for c in content:
            if isinstance(c, dict) and isinstance(c.get("text"), str):
                parts.append(c["text"])
    return "".join(parts)


def _is_context(text):
    return text.lstrip().startswith(CONTEXT_PREFIXES)


def analyse_input(body):
    """Return facts about the request's input items."""
    items = body.get("input") if isinstance(body, dict) else None
    if not isinstance(items, list):
        items = []
    prompts = []            # (index, text) of real user prompts
    user_messages = 0
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            continue
        if it.get("type", "message") == "message" and it.get("role") == "user":
            user_messages += 1
            text = _content_text(it)
            if not _is_context(text):
                prompts.append((i, text))
    last_idx, last_text = prompts[-1] if prompts else (-1, "")
    # Tool outputs that arrived after the last prompt (this turn's round trip).
    outputs = {}
    for it in items[last_idx + 1:]:
        if isinstance(it, dict) and it.get("type") in (
                "function_call_output", "custom_tool_call_output"):
            out = it.get("output")
            if not isinstance(out, str):
                out = json.dumps(out)
            outputs[it.get("call_id")] = out
    return {
        "items": len(items),
        "user_messages": user_messages,
        "prompts": len(prompts),
        "prior_prompts": max(len(prompts) - 1, 0),
        "prior_prompt_texts": [t for _, t in prompts[:-1]],
        "last_prompt": last_text,
        "tool_outputs": outputs,
    }


def pick_scenario(last_prompt, default):
    found = MARKER_RE.findall(last_prompt or "")
    if found:
        name, arg = found[-1]
        return name.lower(), arg
    name, _, arg = default.partition(":")
    return name.lower(), arg


# ----------------------------------------------------------------- output --
def run_report(status, summary, files_written=()):
    return json.dumps({
        "schema_version": "1.0.0",
        "status": status,
        "summary": summary,
        "files_read": [],
        "files_written": list(files_written),
        "artifacts": [],
    })


def usage_for(body_len, text_len):
    inp = max(body_len // 4, 1)
    out = max(text_len // 4, 1)
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inp + out,
    }


class Handler(BaseHTTPRequestHandler):
    server_version = "phn-mock/1.0"
    protocol_version = "HTTP/1.0"   # one request per connection; EOF ends SSE

    # quiet default stderr logging; we have our own log
    def log_message(self, fmt, *args):  # noqa: N802
        pass

    # ---- plumbing
    def _log(self, rec):
        srv = self.server
        rec.setdefault("ts", time.time())
        rec.setdefault("method", self.command)
        rec.setdefault("path", self.path)
        hdrs = {}
        for k in LOGGED_HEADERS:
            v = self.headers.get(k)
            if v is not None:
                hdrs[k] = v
        rec.setdefault("headers", hdrs)
        rec.setdefault("auth_present", self.headers.get("authorization") is not None)
        if srv.log_path:
            line = json.dumps(rec, ensure_ascii=False)
            with srv.log_lock:
                with open(srv.log_path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")

    def _read_body(self):
        te = (self.headers.get("transfer-encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                size_line = self.rfile.readline()
                if not size_line:
                    break
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b"".join(chunks)
        else:
            n = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(n) if n > 0 else b""
        enc = (self.headers.get("content-encoding") or "").lower()
        if enc == "gzip":
            import gzip
            raw = gzip.decompress(raw)
        elif enc == "deflate":
            import zlib
            raw = zlib.decompress(raw)
        return raw

    def _send_json(self, code, obj, extra_headers=()):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()

    def _event(self, obj, named=True):
        self.seq += 1
        obj.setdefault("sequence_number", self.seq)
        frame = ""
        if named:
            frame += "event: %s\n" % obj["type"]
        frame += "data: %s\n\n" % json.dumps(obj)
        self.wfile.write(frame.encode())
        self.wfile.flush()

    def _response_obj(self, status, output=None, usage=None):
        r = {
            "id": self.resp_id,
            "object": "response",
            "created_at": int(self.t0),
            "status": status,
            "model": self.model,
            "output": output or [],
        }
        if usage is not None:
            r["usage"] = usage
        return r

    def _client_gone(self, timeout):
        """Wait up to timeout s; True if the peer closed the connection."""
        try:
            r, _, _ = select.select([self.connection], [], [], timeout)
            if r:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True
        return False

    # ---- SSE bodies
    def _begin(self):
        self._start_sse()
        self._event({"type": "response.created",
                     "response": self._response_obj("in_progress")})
        self._event({"type": "response.in_progress",
                     "response": self._response_obj("in_progress")})

    def _message_item(self, text, out_idx, partial=False):
        item_id = "msg_" + uuid.uuid4().hex[:16]
        self._event({"type": "response.output_item.added", "output_index": out_idx,
                     "item": {"id": item_id, "type": "message", "status": "in_progress",
                              "role": "assistant", "content": []}})
        self._event({"type": "response.content_part.added", "item_id": item_id,
                     "output_index": out_idx, "content_index": 0,
                     "part": {"type": "output_text", "text": "", "annotations": []}})
        step = max(len(text) // 3, 1)
        chunks = [text[i:i + step] for i in range(0, len(text), step)] or [""]
        if partial:
            chunks = chunks[:1]
        for ch in chunks:
            self._event({"type": "response.output_text.delta", "item_id": item_id,
                         "output_index": out_idx, "content_index": 0, "delta": ch})
        if partial:
            return None
        self._event({"type": "response.output_text.done", "item_id": item_id,
                     "output_index": out_idx, "content_index": 0, "text": text})
        part = {"type": "output_text", "text": text, "annotations": []}
        self._event({"type": "response.content_part.done", "item_id": item_id,
                     "output_index": out_idx, "content_index": 0, "part": part})
        item = {"id": item_id, "type": "message", "status": "completed",
                "role": "assistant", "content": [part]}
        self._event({"type": "response.output_item.done", "output_index": out_idx,
                     "item": item})
        return item

    def _complete(self, output, text_len):
        self._event({"type": "response.completed",
                     "response": self._response_obj(
                         "completed", output, usage_for(self.body_len, text_len))})

    def _emit_message(self, text, reasoning=None):
        self._begin()
        output = []
        if reasoning:
            rid = "rs_" + uuid.uuid4().hex[:16]
            ritem = {"id": rid, "type": "reasoning",
                     "summary": [{"type": "summary_text", "text": reasoning}]}
            self._event({"type": "response.output_item.added", "output_index": 0,
                         "item": dict(ritem, summary=[])})
            self._event({"type": "response.output_item.done", "output_index": 0,
                         "item": ritem})
            output.append(ritem)
        output.append(self._message_item(text, len(output)))
        self._complete(output, len(text))

    def _emit_tool_call(self, cmd):
        self._begin()
        call_id = "call_" + uuid.uuid4().hex[:20]
        fc_id = "fc_" + uuid.uuid4().hex[:16]
        # login=false: no `bash -l` (a login shell sources /etc/profile and
        # ~/.profile, which print noise such as pyenv rehash warnings).
        args = json.dumps({"cmd": cmd, "login": False})
        self._event({"type": "response.output_item.added", "output_index": 0,
                     "item": {"id": fc_id, "type": "function_call", "status": "in_progress",
                              "name": "exec_command", "call_id": call_id,
                              "arguments": ""}})
        self._event({"type": "response.function_call_arguments.delta", "item_id": fc_id,
                     "output_index": 0, "delta": args})
        self._event({"type": "response.function_call_arguments.done", "item_id": fc_id,
                     "output_index": 0, "arguments": args})
        item = {"id": fc_id, "type": "function_call", "status": "completed",
                "name": "exec_command", "call_id": call_id, "arguments": args}
        self._event({"type": "response.output_item.done", "output_index": 0,
                     "item": item})
        self._complete([item], len(args))
        return call_id

    # ---- HTTP verbs
    def _not_found(self):
        try:
            n = int(self.headers.get("content-length") or 0)
            if n > 0:
                self.rfile.read(min(n, 1 << 20))
        except (OSError, ValueError):
            pass
        self._log({"status": 404})
        self._send_json(404, {"error": {"message": "mock: no such endpoint: %s %s"
                                        % (self.command, self.path),
                                        "type": "not_found"}})

    def do_GET(self):  # noqa: N802
        self._not_found()

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def do_POST(self):  # noqa: N802
        if not self.path.split("?", 1)[0].rstrip("/").endswith("/responses"):
            self._not_found()
            return
        self.t0 = time.time()
        self.seq = 0
        self.resp_id = "resp_" + uuid.uuid4().hex[:20]
        raw = self._read_body()
        self.body_len = len(raw)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
        self.model = (body or {}).get("model", "mock-model") if isinstance(body, dict) else "mock-model"
        info = analyse_input(body)
        name, arg = pick_scenario(info["last_prompt"], self.server.default_scenario)
        rec = {
            "status": 200,
            "scenario": name,
            "scenario_arg": arg,
            "thread_id": self.headers.get("thread-id") or self.headers.get("session-id"),
            "input_items": info["items"],
            "user_messages": info["user_messages"],
            "prior_prompts": info["prior_prompts"],
            "last_prompt": info["last_prompt"],
            "tool_outputs": info["tool_outputs"],
            "body": body if body is not None else raw.decode("utf-8", "replace"),
        }
        try:
            self._serve(name, arg, info, rec)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            rec["client_gone"] = True
        finally:
            rec["duration_s"] = round(time.time() - self.t0, 3)
            self._log(rec)
        self.close_connection = True

    def _serve(self, name, arg, info, rec):
        if name not in KNOWN:
            rec["status"] = 400
            self._send_json(400, {"error": {"message": "mock: unknown scenario %r" % name,
                                            "type": "invalid_request_error"}})
            return
        n = info["prior_prompts"]
        if name == "ok":
            self._emit_message(run_report(
                "ok", "mock ok: %d prior user message(s) in input" % n))
        elif name in ("report_failed", "needs_attention"):
            status = "failed" if name == "report_failed" else "needs_attention"
            self._emit_message(run_report(
                status, "mock %s: %d prior user message(s) in input" % (status, n)))
        elif name == "not_json":
            self._emit_message("This is plain text, not a Run Report.")
        elif name == "schema_invalid":
            self._emit_message(json.dumps({"status": "ok", "summary": "missing keys"}))
        elif name == "reply":
            self._emit_message(arg)
        elif name == "reasoning":
            self._emit_message(run_report("ok", "mock reasoning: %d prior user message(s) in input" % n),
                               reasoning="Thinking about the mock task.")
        elif name == "minimal":
            text = run_report("ok", "mock minimal")
            self._start_sse()
            self._event({"type": "response.output_item.done", "item": {
                "type": "message", "role": "assistant", "id": "msg_1",
                "content": [{"type": "output_text", "text": text}]}}, named=False)
            self._event({"type": "response.completed", "response": {"id": "resp_1"}},
                        named=False)
        elif name in ("http500", "http400", "http429"):
            code = int(name[4:])
            rec["status"] = code
            msg = {500: "mock internal server error", 400: "mock bad request",
                   429: "mock rate limit exceeded"}[code]
            typ = {500: "server_error", 400: "invalid_request_error",
                   429: "rate_limit_exceeded"}[code]
            self._send_json(code, {"error": {"message": msg, "type": typ, "code": typ}})
        elif name == "rate_limit":
            secs = int(arg) if arg.isdigit() else 20
            rec["status"] = 429
            self._send_json(429, {"error": {
                "message": "Rate limit reached for requests (mock)",
                "type": "rate_limit_exceeded", "code": "rate_limit_exceeded"}},
                extra_headers=(("Retry-After", str(secs)),))
        elif name == "usage_limit":
            secs = int(arg) if arg.isdigit() else 60
            rec["status"] = 429
            rec["resets_at"] = int(time.time()) + secs
            self._send_json(429, {"error": {
                "message": "The usage limit has been reached (mock)",
                "type": "usage_limit_reached", "plan_type": "plus",
                "resets_at": rec["resets_at"], "resets_in_seconds": secs}})
        elif name == "flaky":
            want = int(arg) if arg.isdigit() else 1
            key = hashlib.sha256(info["last_prompt"].encode()).hexdigest()
            with self.server.flaky_lock:
                seen = self.server.flaky_counts.get(key, 0)
                self.server.flaky_counts[key] = seen + 1
            rec["flaky_seen"] = seen
            if seen < want:
                rec["status"] = 500
                self._send_json(500, {"error": {"message": "mock flaky failure %d/%d"
                                                % (seen + 1, want), "type": "server_error"}})
            else:
                self._emit_message(run_report(
                    "ok", "mock flaky ok after %d failure(s)" % want))
        elif name == "failed_event":
            self._begin()
            self._event({"type": "response.failed", "response": dict(
                self._response_obj("failed"),
                error={"code": "server_error", "message": "mock failure"})})
        elif name == "drop":
            self._begin()
            self._message_item(run_report("ok", "never finished"), 0, partial=True)
            # Cut the stream: no response.completed, then EOF.
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        elif name in ("hang", "hang_sse"):
            limit = self.server.hang_max
            if arg:
                try:
                    limit = min(float(arg), limit)
                except ValueError:
                    pass
            if name == "hang_sse":
                self._start_sse()
            deadline = time.monotonic() + limit
            while not STOP.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    rec["hang_end"] = "deadline"
                    break
                if self._client_gone(min(left, 0.5)):
                    rec["hang_end"] = "client_gone"
                    break
            else:
                rec["hang_end"] = "server_stop"
        elif name == "slow":
            secs = 2.0
            if arg:
                try:
                    secs = max(0.0, min(float(arg), 120.0))
                except ValueError:
                    pass
            deadline = time.monotonic() + secs
            while not STOP.is_set() and time.monotonic() < deadline:
                if self._client_gone(min(deadline - time.monotonic(), 0.25)):
                    rec["client_gone"] = True
                    return
            self._emit_message(run_report(
                "ok", "mock slow ok after %gs: %d prior user message(s) in input" % (secs, n)))
        elif name in ("write_file", "patch_file"):
            fname = arg or "mock_output.txt"
            if not SAFE_NAME_RE.match(fname) or ".." in fname.split("/"):
                rec["status"] = 400
                self._send_json(400, {"error": {"message": "mock: unsafe file name %r" % fname,
                                                "type": "invalid_request_error"}})
                return
            outputs = info["tool_outputs"]
            if not outputs:
                if name == "write_file":
                    cmd = "printf 'written by mock\\n' > %s" % shlex.quote(fname)
                else:
                    cmd = ("apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: %s\n"
                           "+patched by mock\n*** End Patch\nEOF\n" % fname)
                rec["tool_call"] = cmd
                rec["call_id"] = self._emit_tool_call(cmd)
                return
            out = "\n".join(str(v) for v in outputs.values())
            m = re.search(r"(?:exited with code|exit code:?)\s*(-?\d+)", out, re.I)
            ok = (m is not None and m.group(1) == "0") or (
                m is None and name == "patch_file" and "success" in out.lower())
            if ok:
                self._emit_message(run_report(
                    "ok", "mock %s wrote %s" % (name, fname), [fname]))
            else:
                self._emit_message(run_report(
                    "failed", "mock %s: tool failed: %s" % (name, out[-300:]), []))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main(argv=None):
    ap = argparse.ArgumentParser(description="Mock OpenAI Responses API (SSE) for codex.")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free)")
    ap.add_argument("--port-file", help="write the port here (atomically) once listening")
    ap.add_argument("--log", help="append one JSON line per request to this file")
    ap.add_argument("--scenario", default="ok",
                    help="default scenario when the prompt has no MOCK:<name> marker")
    ap.add_argument("--hang-max", type=float, default=600.0,
                    help="upper bound in seconds for the hang scenario (default 600)")
    a = ap.parse_args(argv)

    if pick_scenario("", a.scenario)[0] not in KNOWN:
        ap.error("unknown scenario %r" % a.scenario)

    srv = Server((HOST, a.port), Handler)
    srv.log_path = os.path.abspath(a.log) if a.log else None
    srv.log_lock = threading.Lock()
    srv.default_scenario = a.scenario
    srv.hang_max = max(0.0, min(a.hang_max, 600.0))
    srv.flaky_lock = threading.Lock()
    srv.flaky_counts = {}
    port = srv.server_address[1]

    def on_signal(signum, frame):
        STOP.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_signal)

    if srv.log_path:
        open(srv.log_path, "a").close()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True)
    t.start()
    if a.port_file:
        tmp = "%s.tmp.%d" % (a.port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.port_file)
    print("MOCK_PORT=%d" % port, flush=True)

    while not STOP.wait(1.0):
        pass
    srv.shutdown()
    srv.server_close()
    if a.port_file:
        try:
            os.unlink(a.port_file)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
