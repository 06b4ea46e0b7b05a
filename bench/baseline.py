#!/usr/bin/env python3
"""BASELINE, NOT PART OF d42sync: the script a Device42 user writes today.

It is the comparison point of the benchmark (bench/run.py), kept deliberately plain and honest:
`requests` + the standard `sqlite3` module with its defaults (rollback journal, no pragmas),
a token from /tauth/1.0/token/, then the pages of /api/1.0/devices/all/ one after the other on
one keep-alive session, each page's records stored with INSERT OR REPLACE by id as their JSON
text, one transaction per page.

    python3 bench/baseline.py --base-url http://127.0.0.1:PORT --db inventory.db
"""

import argparse
import json
import sqlite3

import requests

PAGE_SIZE = 1000  # Device42's cap on `limit`
MAX_PAGES = 1_000_000  # a bound, not a limit anyone reaches


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--client-key", default="sim-client-key")
    ap.add_argument("--secret-key", default="sim-secret-key")
    args = ap.parse_args()

    session = requests.Session()
    answer = session.post(
        f"{args.base_url}/tauth/1.0/token/", auth=(args.client_key, args.secret_key), timeout=60
    )
    answer.raise_for_status()
    session.headers["Authorization"] = f"Bearer {answer.json()['token']}"

    db = sqlite3.connect(args.db)
    db.execute("CREATE TABLE IF NOT EXISTS devices (id INTEGER PRIMARY KEY, raw TEXT NOT NULL)")
    offset = 0
    for _ in range(MAX_PAGES):
        page = session.get(
            f"{args.base_url}/api/1.0/devices/all/",
            params={"limit": PAGE_SIZE, "offset": offset},
            timeout=60,
        )
        page.raise_for_status()
        body = page.json()
        devices = body["Devices"]
        with db:  # one transaction per page
            db.executemany(
                "INSERT OR REPLACE INTO devices (id, raw) VALUES (?, ?)",
                [(d["id"], json.dumps(d)) for d in devices],
            )
        offset += len(devices)
        if not devices or offset >= body.get("total_count", offset + 1):
            break
    db.close()
    print(f"stored {offset} devices")


if __name__ == "__main__":
    main()
