"""The `photo-removal` command line: thin parsing around the stages."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photo-removal",
        description="Family-and-friends photo-removal coordinator.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web app and JSON API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    worker = commands.add_parser("worker", help="run a job consumer only (extra machines)")
    worker.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="face-engine processes per scan (default: the number of cores)",
    )

    commands.add_parser("migrate", help="bring the database schema up to date")

    scan = commands.add_parser("scan", help="scan photos for enrolled people (no database needed)")
    scan.add_argument(
        "--reference",
        required=True,
        type=Path,
        metavar="DIR",
        help="reference photos: directly in DIR (one person) or a subfolder each",
    )
    scan.add_argument(
        "--photos",
        required=True,
        type=Path,
        nargs="+",
        metavar="PATH",
        help="folders, photos or export archives (.zip, .tar, .tar.gz)",
    )
    scan.add_argument(
        "--workers",
        type=_positive,
        default=os.cpu_count() or 1,
        help="worker processes (default: the number of cores)",
    )
    scan.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    return parser


def _scan(args: argparse.Namespace) -> int:
    from service.scan_command import ScanRefused, run_scan

    try:
        report = run_scan(args.reference, args.photos, args.workers)
    except ScanRefused as e:
        print(f"photo-removal scan: {e}", file=sys.stderr)
        return 2
    document = report.as_json()
    if args.json:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for match in document["matches"]:
        print(f"{match['photo']}\t{match['person']}\t{match['band']}\t{match['distance']:.3f}")
    for error in document["errors"]:
        print(f"{error['photo']}\terror: {error['error']}", file=sys.stderr)
    print(
        f"{document['photos_scanned']} of {document['photos_seen']} photos scanned, "
        f"{document['faces_found']} faces, {len(document['matches'])} matches "
        f"in {document['elapsed_s']:.1f} s",
        file=sys.stderr,
    )
    return 0


def _logging() -> None:
    from service.logs import redact_access_log

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("huey").setLevel(logging.WARNING)  # not a line per 5-second tick
    redact_access_log()


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app
    from service.config import Settings

    _logging()
    settings = Settings()
    # uvicorn believes X-Forwarded-For from loopback unless told otherwise, which let any local
    # client (or one behind a proxy that passes the header on) choose its own address.
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or "",
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from service.app import build_services
    from service.config import Settings
    from service.db import migrate

    _logging()
    settings = Settings()
    if args.workers:
        settings = settings.model_copy(update={"scan_workers": args.workers})
    services = build_services(settings)
    migrate(services.db)
    services.jobs.start()
    # Huey's own consumer loop. SIGTERM (and SIGINT) stop it cleanly: a running scan records
    # the photos it finished, gives the rest back to the queue and shuts its engines down.
    services.jobs.consumer(settings.queue_workers, signals=True).run()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from service.app import build_services
    from service.config import Settings
    from service.db import migrate

    migrate(build_services(Settings()).db)
    print("the database schema is up to date", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("serve", "worker", "migrate"):
        os.umask(0o077)  # what the service and its libraries create is its own: 0600 and 0700
    handlers = {"scan": _scan, "serve": _serve, "worker": _worker, "migrate": _migrate}
    return handlers[args.command](args)


def run() -> None:
    """Console-script entry point."""
    # One BLAS thread per process, set before numpy loads: the face engine runs one process per
    # core, and idle OpenBLAS threads spinning for work would take the cores from them.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())


if __name__ == "__main__":
    run()
