#!/usr/bin/env python3
"""The d42sync performance benchmark: whole-process wall time and peak RSS of `d42sync pull` and
`d42sync push` against `d42sim simulate` on loopback, side by side with the Python baseline
(bench/baseline.py) and the floors (examples/floor_download.rs, examples/floor_insert.rs).

    python3 bench/run.py            # full run, 3 runs per scenario, writes bench/results.md
    python3 bench/run.py --quick    # smoke run: 10 000 devices, 1 run, under a minute once built

See bench/README.md for what each number means. Standard library only, except `requests` for the
baseline (pip-installed when missing).
"""

import argparse
import datetime
import json
import os
import platform
import re
import select
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
OUT = BENCH / "out"  # git-ignored scratch space: databases, configs, logs

# Every child gets at most this long; a benchmark that hangs must not hang forever.
CHILD_TIMEOUT_S = 900
# The simulator generates its inventory before it listens; 400 000 devices take a few seconds.
SIM_START_TIMEOUT_S = 180

# What the product is configured with (and the download floor imitates).
PAGE_SIZE = 1000
CONCURRENCY = 8

# The targets of the issue.
TARGET_BASELINE_SPEEDUP = 2.0  # empty-db pull at least 2x faster than the baseline
TARGET_FLOOR_RATIO = 1.3  # empty-db pull within 1.3x of the larger floor
TARGET_REPULL_RATIO = 1.5  # re-pull with no change <= 1.5x the download floor
TARGET_RSS_MIB = 64.0  # peak RSS of the 100k pull
TARGET_RSS_GROWTH = 1.10  # the 400k pull within 10% of the 100k one
TARGET_LATENCY_RATIO = 1.3  # latency-bound pull <= 1.3x pages x latency / concurrency
TARGET_WRITTEN_RATIO = 1.3  # empty-db pull writes <= 1.3x the bytes the insert floor writes
TARGET_DB_SIZE_RATIO = 1.3  # database <= 1.3x a table holding each raw record once
TARGET_REPULL_BYTES = 0.10  # a no-change re-pull downloads <= 10% of a full pull's bytes
TARGET_PUSH_EFFICIENCY = 0.8  # push >= concurrency x 0.8 / latency POSTs per second


class BenchError(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----- processes -----


def measure(cmd, logfile, env=None, timeout=CHILD_TIMEOUT_S):
    """Runs `cmd` to completion; (wall seconds, peak RSS MiB, output text, bytes written) of that
    child only. Bytes written are the child's block output (ru_oublock, 512-byte units): what it
    sent towards the disk, the WAL and its checkpoint included, whether or not the file stayed."""
    full_env = dict(os.environ, **(env or {}))
    started = time.monotonic()
    with open(logfile, "wb") as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env)
    timer = threading.Timer(timeout, child.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(child.pid, 0)
    finally:
        timer.cancel()
    wall = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    text = Path(logfile).read_text(errors="replace")
    if child.returncode != 0:
        raise BenchError(f"{' '.join(map(str, cmd))} exited {child.returncode}; see {logfile}:\n{text[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, text, usage.ru_oublock * 512


class Simulator:
    """A fresh `d42sim simulate` on 127.0.0.1, on a port the kernel picks."""

    def __init__(self, binary, devices, logfile, page_delay=None, post_delay=None):
        cmd = [str(binary), "simulate", "--listen", "127.0.0.1:0", "--devices", str(devices)]
        if page_delay:
            cmd += ["--page-delay", page_delay]
        if post_delay:
            cmd += ["--post-delay", post_delay]
        self.errlog = open(logfile, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errlog)
        self.base_url = self._wait_listening()

    def _wait_listening(self):
        deadline = time.monotonic() + SIM_START_TIMEOUT_S
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                break
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
        m = re.search(rb"listening on (http://127\.0\.0\.1:\d+)", buf)
        if not m:
            self.stop()
            raise BenchError(f"the simulator did not start: {buf[:500]!r}")
        return m.group(1).decode()

    def rss_mib(self):
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return float("nan")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.errlog.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ----- setup -----


def ensure_requests():
    try:
        import requests  # noqa: F401
    except ImportError:
        log("installing requests for the baseline")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "requests"], check=True)


def build():
    """`cargo build --release --bins --examples`; the target directory cargo uses."""
    log("building release binaries and examples")
    subprocess.run(["cargo", "build", "--release", "--bins", "--examples"], cwd=REPO, check=True)
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    return Path(json.loads(meta.stdout)["target_directory"]) / "release"


class Bins:
    def __init__(self, release):
        self.d42sync = release / "d42sync"
        self.d42sim = release / "d42sim"
        self.floor_download = release / "examples" / "floor_download"
        self.floor_insert = release / "examples" / "floor_insert"
        for b in (self.d42sync, self.floor_download, self.floor_insert):
            if not b.exists():
                raise BenchError(f"missing {b}; build first")


def load():
    """The 1-minute load average: other work on the machine skews every number."""
    return round(os.getloadavg()[0], 2)


def fresh_dir(name):
    d = OUT / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def write_config(run_dir, base_url):
    secret = run_dir / "secret_key"
    secret.write_text("sim-secret-key")
    secret.chmod(0o600)
    config = run_dir / "d42sync.toml"
    config.write_text(
        f"""[device42]
base_url = "{base_url}"
client_key = "sim-client-key"
secret_key_file = "{secret}"
[database]
path = "{run_dir / 'inventory.db'}"
[devices]
endpoint = "/api/1.0/devices/all/"
page_size = {PAGE_SIZE}
concurrency = {CONCURRENCY}
[buildings]
concurrency = {CONCURRENCY}
batch_size = 1000
[log]
format = "text"
level = "warn"
"""
    )
    return config


def count_rows(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def line_field(text, message, field):
    """The value of `field` in d42sync's log line `message` (a number as int), or None."""
    for line in ANSI.sub("", text).splitlines():
        if message in line:
            m = re.search(rf"\b{field}=(\S+)", line)
            if m:
                value = m.group(1).strip('"')
                return int(value) if value.isdigit() else value
    return None


def internal_ms(text, message):
    """duration_ms of d42sync's INFO line `message` (its own timing of the job), or None."""
    return line_field(text, message, "duration_ms")


def db_bytes(db):
    """The size of a database file and its -wal and -shm companions."""
    return sum(f.stat().st_size for f in (Path(f"{db}{s}") for s in ("", "-wal", "-shm")) if f.exists())


# d42sync runs at INFO for its one summary line per job (with its own duration_ms).
D42_ENV = {"D42SYNC_LOG__LEVEL": "info", "NO_COLOR": "1"}


# ----- scenarios -----


def floor_download(bins, sim, run_dir, tag):
    cmd = [bins.floor_download, "--base-url", sim.base_url, "--page-size", str(PAGE_SIZE),
           "--concurrency", str(CONCURRENCY)]
    wall, rss, text, _ = measure(cmd, run_dir / f"{tag}.log")
    return {"wall": wall, "rss": rss, "pages": json.loads(text.strip().splitlines()[-1])["pages"]}


def pull_scenario(bins, name, devices, runs, *, page_delay=None, repull=False, insert_floor=False,
                  baseline=True):
    """Measures one pull scenario against one fresh simulator; lists of samples per measurement."""
    res = {"load_before": load(), "devices": devices, "floor_dl": [], "d42": [], "repull": [], "baseline": [],
           "baseline_repull": [], "floor_ins": []}
    scratch = fresh_dir(name)
    log(f"{name}: starting the simulator with {devices} devices")
    with Simulator(bins.d42sim, devices, scratch / "simulator.log", page_delay=page_delay) as sim:
        # The simulator renders a record on first request and caches it: one untimed pass
        # first, so that no measured client pays for rendering.
        warm = floor_download(bins, sim, scratch, "warmup")
        res["pages_floor"] = warm["pages"]
        log(f"{name}: warmed up ({warm['pages']} pages in {warm['wall']:.2f} s)")
        if insert_floor:
            # The records alone (the floor), then with their child rows (what storing
            # the child tables costs SQLite itself), then with the unset custom fields as key
            # lists instead of rows (what a sparse layout of them would cost).
            for key, extra in (("floor_ins", []), ("floor_ins_children", ["--children"]),
                               ("floor_ins_sparse", ["--children", "--sparse-custom-fields"])):
                _, _, text, written = measure([bins.floor_insert, "--base-url", sim.base_url, "--db",
                                               scratch / "floor.db", "--repeat", str(runs), *extra],
                                              scratch / f"{key}.log")
                out = json.loads(text.strip().splitlines()[-1])
                res[key] = out["seconds"]
                res[f"{key}_commit"] = out["commit_seconds"]
                res[f"{key}_db_bytes"] = out["db_bytes"]
                # One process inserts `runs` times, each into a fresh database.
                res[f"{key}_written"] = [written / runs]
                res["record_bytes"] = round(out["bytes"] / max(out["rows"], 1))
                if extra:
                    res["child_rows"] = out["child_rows"]
                if "stored_child_rows" in out and "--sparse-custom-fields" in extra:
                    res["sparse_child_rows"] = out["stored_child_rows"]
                log(f"{name}: {key} {out['seconds']} s, of which commit {out['commit_seconds']} s "
                    f"({res['record_bytes']} B/record, {out['child_rows']} child rows)")
        for i in range(runs):
            run_dir = fresh_dir(f"{name}/run{i + 1}")
            config = write_config(run_dir, sim.base_url)
            s = floor_download(bins, sim, run_dir, "floor_download")
            res["floor_dl"].append(s)
            log(f"{name} run {i + 1}: download floor {s['wall']:.2f} s, {s['rss']:.1f} MiB")

            if baseline:
                bdb = run_dir / "baseline.db"
                cmd = [sys.executable, BENCH / "baseline.py", "--base-url", sim.base_url, "--db", bdb]
                for key, tag in (("baseline", "baseline"), ("baseline_repull", "baseline_repull")):
                    if key == "baseline_repull" and not repull:
                        break
                    wall, rss, _, _ = measure(cmd, run_dir / f"{tag}.log")
                    n = count_rows(bdb, "SELECT count(*) FROM devices")
                    if n != devices:
                        raise BenchError(f"baseline stored {n} devices, expected {devices}")
                    res[key].append({"wall": wall, "rss": rss})
                    log(f"{name} run {i + 1}: {tag} {wall:.2f} s, {rss:.1f} MiB")
                bdb.unlink()

            cmd = [bins.d42sync, "--config", config, "pull"]
            for key, tag in (("d42", "pull"), ("repull", "repull")):
                if key == "repull" and not repull:
                    break
                wall, rss, text, written = measure(cmd, run_dir / f"{tag}.log", env=D42_ENV)
                n = count_rows(run_dir / "inventory.db", "SELECT count(*) FROM devices")
                if n != devices:
                    raise BenchError(f"d42sync stored {n} devices, expected {devices}")
                res[key].append({"wall": wall, "rss": rss, "internal_ms": internal_ms(text, "pull finished"),
                                 "written": written, "db_bytes": db_bytes(run_dir / "inventory.db"),
                                 "downloaded": line_field(text, "pull finished", "bytes"),
                                 "mode": line_field(text, "pull finished", "mode")})
                log(f"{name} run {i + 1}: d42sync {tag} {wall:.2f} s, {rss:.1f} MiB")
            for f in run_dir.glob("inventory.db*"):
                f.unlink()
        res["sim_rss"] = sim.rss_mib()
    res["load_after"] = load()
    return res


def push_scenario(bins, name, buildings, runs, post_delay):
    res = {"load_before": load(), "buildings": buildings, "d42": []}
    scratch = fresh_dir(name)
    log(f"{name}: starting the simulator with {post_delay} per POST")
    with Simulator(bins.d42sim, 1, scratch / "simulator.log", post_delay=post_delay) as sim:
        for i in range(runs):
            run_dir = fresh_dir(f"{name}/run{i + 1}")
            config = write_config(run_dir, sim.base_url)
            measure([bins.d42sync, "--config", config, "migrate"], run_dir / "migrate.log")
            con = sqlite3.connect(run_dir / "inventory.db")
            with con:
                con.executemany(
                    "INSERT INTO building_queue (name, address) VALUES (?, ?)",
                    ((f"bench-building-{n:06d}", f"{n} Benchmark Street") for n in range(buildings)),
                )
            con.close()
            wall, rss, text, _ = measure([bins.d42sync, "--config", config, "push"], run_dir / "push.log",
                                      env=D42_ENV)
            done = count_rows(run_dir / "inventory.db",
                              "SELECT count(*) FROM building_queue WHERE status = 'done'")
            if done != buildings:
                raise BenchError(f"push left {buildings - done} of {buildings} buildings not done")
            res["d42"].append({"wall": wall, "rss": rss, "internal_ms": internal_ms(text, "push finished")})
            log(f"{name} run {i + 1}: d42sync push {wall:.2f} s ({buildings / wall:.0f}/s), {rss:.1f} MiB")
    res["load_after"] = load()
    return res


# ----- report -----


def med(samples, key="wall"):
    values = [s[key] if isinstance(s, dict) else s for s in samples]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def mib(n):
    return f"{n / 1048576:.1f} MiB"


def fmt(v, digits=2):
    return "—" if v is None else f"{v:.{digits}f}"


def verdict(ok):
    return "—" if ok is None else ("PASS" if ok else "MISS")


def machine():
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cpus ({cpu}), {mem_kib / 1024 / 1024:.1f} GiB memory, {platform.system()} {platform.release()}"


def commit():
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    branch = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    return f"{sha} ({branch}{', with uncommitted changes' if dirty else ''})"


def report(results, p, argv):
    lines = []
    add = lines.append
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    add(f"# d42sync benchmark results{' (quick smoke run)' if p['quick'] else ''}")
    add("")
    add(f"- date: {now}")
    add(f"- machine: {machine()}")
    add(f"- commit: {p['commit']}")
    add(f"- command: `python3 bench/run.py {' '.join(argv)}`".replace("run.py `", "run.py`"))
    add(f"- runs per scenario: {p['runs']} (medians below); page size {PAGE_SIZE}, concurrency {CONCURRENCY}; "
        "wall = whole process, start to exit; peak RSS = the child's ru_maxrss")
    add("")
    add("## Measurements (medians)")
    add("")
    add("| scenario | d42sync wall s | d42sync peak RSS MiB | baseline wall s | baseline peak RSS MiB "
        "| download floor s | insert floor s |")
    add("|---|---:|---:|---:|---:|---:|---:|")

    def row(label, d42, base, floor_dl, floor_ins):
        add(f"| {label} | {fmt(med(d42))} | {fmt(med(d42, 'rss'), 1)} | {fmt(med(base))} "
            f"| {fmt(med(base, 'rss'), 1)} | {fmt(med(floor_dl))} | {fmt(med(floor_ins))} |")

    pull, large, lat, push = (results.get(k) for k in ("pull", "large", "latency", "push"))
    if pull:
        n = pull["devices"]
        row(f"pull {n:,} devices, empty db", pull["d42"], pull["baseline"], pull["floor_dl"], pull["floor_ins"])
        row(f"re-pull {n:,} devices, no upstream change", pull["repull"], pull["baseline_repull"],
            pull["floor_dl"], [])
    if large:
        row(f"pull {large['devices']:,} devices, empty db", large["d42"], large["baseline"],
            large["floor_dl"], large["floor_ins"])
    if lat:
        pages = f"{lat['pages_floor']} pages x {p['page_delay']}"
        row(f"latency-bound pull: {pages}, empty db", lat["d42"], lat["baseline"], lat["floor_dl"], [])
        if lat.get("repull"):  # absent from results recorded before the latency re-pull existed
            row(f"latency-bound re-pull: {pages}, no upstream change", lat["repull"], lat["baseline_repull"],
                lat["floor_dl"], [])
    if push:
        rate = push["buildings"] / med(push["d42"])
        add(f"| push {push['buildings']:,} buildings, {p['post_delay']} per POST ({rate:.0f} POST/s) "
            f"| {fmt(med(push['d42']))} | {fmt(med(push['d42'], 'rss'), 1)} | — | — | — | — |")
    add("")
    add("## Targets")
    add("")
    add("| target | measured | limit | result |")
    add("|---|---:|---:|---|")
    if pull:
        d, b = med(pull["d42"]), med(pull["baseline"])
        fdl, fins = med(pull["floor_dl"]), med(pull["floor_ins"])
        speedup = b / d
        add(f"| empty-db pull {pull['devices']:,}: speed-up over the Python baseline "
            f"({fmt(b)} s / {fmt(d)} s) | {speedup:.2f}x | ≥ {TARGET_BASELINE_SPEEDUP}x "
            f"| {verdict(speedup >= TARGET_BASELINE_SPEEDUP)} |")
        if fins is not None:
            floor = max(fdl, fins)
            which = "download" if fdl >= fins else "insert"
            r = d / floor
            add(f"| empty-db pull {pull['devices']:,} vs the larger floor ({which}, {fmt(floor)} s) "
                f"| {r:.2f}x | ≤ {TARGET_FLOOR_RATIO}x | {verdict(r <= TARGET_FLOOR_RATIO)} |")
        written, floor_written = med(pull["d42"], "written"), med(pull.get("floor_ins_written") or [])
        if written is not None and floor_written:
            r = written / floor_written
            add(f"| empty-db pull {pull['devices']:,}: bytes written ({mib(written)}) vs the insert floor's "
                f"({mib(floor_written)}) | {r:.2f}x | ≤ {TARGET_WRITTEN_RATIO}x | {verdict(r <= TARGET_WRITTEN_RATIO)} |")
        size, floor_size = med(pull["d42"], "db_bytes"), med(pull.get("floor_ins_db_bytes") or [])
        if size is not None and floor_size:
            r = size / floor_size
            add(f"| database after the empty-db pull ({mib(size)}) vs a table holding each raw record once "
                f"({mib(floor_size)}) | {r:.2f}x | ≤ {TARGET_DB_SIZE_RATIO}x | {verdict(r <= TARGET_DB_SIZE_RATIO)} |")
        # For reference, not a target: the floor that stores the child rows too.
        fch = med(pull.get("floor_ins_children") or [])
        if fch is not None and fins and None not in (written, floor_written, size, floor_size):
            fch_written = med(pull.get("floor_ins_children_written") or [])
            fch_size = med(pull.get("floor_ins_children_db_bytes") or [])
            add(f"| reference: insert floor with the {pull.get('child_rows', 0):,} child rows vs the insert floor: "
                f"time ({fmt(fch)} s), bytes written ({mib(fch_written)}), size ({mib(fch_size)}) "
                f"| {fch / fins:.2f}x, {fch_written / floor_written:.2f}x, {fch_size / floor_size:.2f}x | — | reference |")
            add(f"| reference: empty-db pull {pull['devices']:,} vs the insert floor with child rows: "
                f"time, bytes written, size | {d / fch:.2f}x, {written / fch_written:.2f}x, {size / fch_size:.2f}x "
                f"| — | reference |")
        fsp = med(pull.get("floor_ins_sparse") or [])
        if fsp is not None and fins and None not in (floor_written, floor_size):
            fsp_written = med(pull.get("floor_ins_sparse_written") or [])
            fsp_size = med(pull.get("floor_ins_sparse_db_bytes") or [])
            add(f"| reference: insert floor with the child rows, unset custom fields as key lists "
                f"({pull.get('sparse_child_rows', 0):,} rows) vs the insert floor: time ({fmt(fsp)} s), "
                f"bytes written ({mib(fsp_written)}), size ({mib(fsp_size)}) "
                f"| {fsp / fins:.2f}x, {fsp_written / floor_written:.2f}x, {fsp_size / floor_size:.2f}x | — | reference |")
        full, again = med(pull["d42"], "downloaded"), med(pull["repull"], "downloaded")
        if full and again is not None:
            r = again / full
            add(f"| re-pull, no change: bytes downloaded ({mib(again)}, {pull['repull'][0].get('mode')}) vs the "
                f"full pull's ({mib(full)}) | {r:.1%} | ≤ {TARGET_REPULL_BYTES:.0%} | {verdict(r <= TARGET_REPULL_BYTES)} |")
        r = med(pull["repull"]) / fdl
        add(f"| re-pull, no change ({fmt(med(pull['repull']))} s) vs the download floor ({fmt(fdl)} s) "
            f"| {r:.2f}x | ≤ {TARGET_REPULL_RATIO}x | {verdict(r <= TARGET_REPULL_RATIO)} |")
        rss = med(pull["d42"], "rss")
        add(f"| peak RSS, empty-db pull {pull['devices']:,} | {rss:.1f} MiB | ≤ {TARGET_RSS_MIB:.0f} MiB "
            f"| {verdict(rss <= TARGET_RSS_MIB)} |")
        rss_re = med(pull["repull"], "rss")
        add(f"| peak RSS, re-pull {pull['devices']:,} (same limit, for reference) | {rss_re:.1f} MiB "
            f"| ≤ {TARGET_RSS_MIB:.0f} MiB | {verdict(rss_re <= TARGET_RSS_MIB)} |")
        if large:
            rl = med(large["d42"], "rss")
            g = rl / rss
            add(f"| peak RSS, pull {large['devices']:,} ({rl:.1f} MiB) vs {pull['devices']:,} ({rss:.1f} MiB) "
                f"| {g:.2f}x | ≤ {TARGET_RSS_GROWTH:.2f}x | {verdict(g <= TARGET_RSS_GROWTH)} |")
    if lat:
        # One ideal for both: the empty-db pull also pays for the first load's writes, while the
        # re-pull (every scheduled pull of a daemon after its first) is left with paging latency.
        ideal = p["latency_pages"] * p["page_delay_s"] / CONCURRENCY
        for label, samples in (("latency-bound pull, empty db", lat["d42"]),
                               ("latency-bound re-pull, no change", lat.get("repull"))):
            d = med(samples or [])
            if d is None:
                continue
            r = d / ideal
            add(f"| {label} ({fmt(d)} s) vs {p['latency_pages']} pages x {p['page_delay']} / "
                f"{CONCURRENCY} = {fmt(ideal)} s | {r:.2f}x | ≤ {TARGET_LATENCY_RATIO}x "
                f"| {verdict(r <= TARGET_LATENCY_RATIO)} |")
    if push:
        want = CONCURRENCY * TARGET_PUSH_EFFICIENCY / p["post_delay_s"]
        rate = push["buildings"] / med(push["d42"])
        add(f"| push rate ({push['buildings']:,} in {fmt(med(push['d42']))} s, whole process) "
            f"| {rate:.0f} POST/s | ≥ {want:.0f} POST/s | {verdict(rate >= want)} |")
    add("")
    add("## Details")
    add("")
    add("Every run, in order (wall s / peak RSS MiB; `in-process` is d42sync's own `duration_ms` of the job; "
        "floor_ins_commit is the COMMIT alone, WAL checkpoint included; load = 1-minute load average).")
    add("")
    for key, res in results.items():
        add(f"- **{key}**: " + ", ".join(
            f"{k}=" + str(res[k])
            for k in ("devices", "buildings", "pages_floor", "record_bytes", "child_rows", "sparse_child_rows",
                      "load_before",
                      "load_after")
            if k in res)
            + (f", simulator peak RSS {res['sim_rss']:.0f} MiB" if "sim_rss" in res else ""))
        for m in ("floor_dl", "floor_ins", "floor_ins_commit", "floor_ins_written", "floor_ins_db_bytes",
                  "floor_ins_children", "floor_ins_children_commit", "floor_ins_children_written",
                  "floor_ins_children_db_bytes", "floor_ins_sparse", "floor_ins_sparse_commit",
                  "floor_ins_sparse_written", "floor_ins_sparse_db_bytes",
                  "baseline", "baseline_repull", "d42", "repull"):
            samples = res.get(m) or []
            if not samples:
                continue
            parts = []
            for s in samples:
                if isinstance(s, dict):
                    t = f"{s['wall']:.2f}/{s['rss']:.1f}"
                    if s.get("internal_ms") is not None:
                        t += f" (in-process {s['internal_ms'] / 1000:.2f})"
                    extra = [f"{k} {mib(s[k])}" for k in ("downloaded", "written", "db_bytes")
                             if isinstance(s.get(k), int)]
                    if s.get("mode"):
                        extra.append(str(s["mode"]))
                    if extra:
                        t += " [" + ", ".join(extra) + "]"
                    parts.append(t)
                elif m.endswith(("_written", "_db_bytes")):
                    parts.append(mib(s))
                else:
                    parts.append(f"{s:.3f}")
            add(f"  - {m}: " + "; ".join(parts))
    return "\n".join(lines) + "\n"


def main():
    argv = sys.argv[1:]
    ap = argparse.ArgumentParser(description="d42sync performance benchmark (see bench/README.md)")
    ap.add_argument("--runs", type=int, default=None, help="runs per scenario (default 3, quick: 1)")
    ap.add_argument("--quick", action="store_true", help="small smoke run: 10 000 devices, 1 run")
    ap.add_argument("--only", default="pull,large,latency,push",
                    help="comma list of scenarios: pull (100k empty + re-pull + floors), large (400k), "
                         "latency (empty + re-pull, 200 ms per page), push")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--out", type=Path, default=None,
                    help="where to write the table (default bench/results.md; quick: bench/out/results-quick.md)")
    a = ap.parse_args()
    q = a.quick
    p = {
        "quick": q,
        "runs": a.runs or (1 if q else 3),
        "devices": 10_000 if q else 100_000,
        "large": 40_000 if q else 400_000,
        "latency_pages": 10 if q else 100,
        "page_delay": "200ms",
        "page_delay_s": 0.2,
        "buildings": 1_000 if q else 10_000,
        "post_delay": "20ms",
        "post_delay_s": 0.02,
    }
    if p["runs"] < 1 or p["runs"] > 20:
        ap.error("--runs must be between 1 and 20")
    only = set(a.only.split(","))
    out = a.out or (OUT / "results-quick.md" if q else BENCH / "results.md")

    ensure_requests()
    # The tree as built (or, with --no-build, as found): an edit made while the scenarios run
    # does not change what was measured.
    p["commit"] = commit()
    if a.no_build:
        meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO,
                              check=True, capture_output=True, text=True)
        release = Path(json.loads(meta.stdout)["target_directory"]) / "release"
    else:
        release = build()
    bins = Bins(release)
    OUT.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    results = {}
    if "pull" in only:
        results["pull"] = pull_scenario(bins, "pull", p["devices"], p["runs"], repull=True, insert_floor=True)
    if "large" in only:
        results["large"] = pull_scenario(bins, "large", p["large"], p["runs"], insert_floor=True)
    if "latency" in only:
        # The re-pull too: a daemon's steady state, where no first-load writes hide the paging.
        results["latency"] = pull_scenario(bins, "latency", p["latency_pages"] * PAGE_SIZE, p["runs"],
                                           page_delay=p["page_delay"], repull=True)
    if "push" in only:
        results["push"] = push_scenario(bins, "push", p["buildings"], p["runs"], p["post_delay"])
    text = report(results, p, argv)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print()
    print(text)
    log(f"done in {time.monotonic() - started:.0f} s; table written to {out}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
