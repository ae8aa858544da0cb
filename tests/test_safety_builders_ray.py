"""An unreachable --ray-address ends in one line within the timeout (a closed 127.0.0.1 port, a listener that
accepts but never answers), before --out is touched, and SIGTERM ends the waiting process at once."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")

REPO = Path(__file__).resolve().parents[1]


def ray_cli(address: str, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "builders.imagenet_qa", "--executor", "ray", "--ray-address",
                             address, "--out", str(out), "--quiet", *extra], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_listener() -> Iterator[tuple[int, threading.Event]]:
    """A 127.0.0.1 port that accepts connections and never answers; the event is set on the first accept."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            accepted.set()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()
    for conn in held:
        conn.close()


def test_closed_port_is_one_line_at_once(tmp_path):
    address = f"127.0.0.1:{closed_port()}"
    t0 = time.monotonic()
    proc = ray_cli(address, tmp_path / "o", "--ray-timeout", "3")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"cannot reach Ray at {address} within 3s" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "o").exists()


def test_silent_listener_gives_up_after_the_timeout(tmp_path, silent_listener):
    port, accepted = silent_listener
    address = f"127.0.0.1:{port}"
    proc = ray_cli(address, tmp_path / "o", "--ray-timeout", "2")
    assert accepted.wait(60), "the build never tried the address"
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 8, "it waited far longer than --ray-timeout"
    assert proc.returncode == 2 and f"cannot reach Ray at {address} within 2s (no answer)" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_sigterm_ends_a_run_waiting_for_ray(tmp_path, silent_listener):
    port, accepted = silent_listener
    proc = ray_cli(f"127.0.0.1:{port}", tmp_path / "o", "--ray-timeout", "120")
    assert accepted.wait(60), "the build never tried the address"
    time.sleep(0.3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 5
    assert proc.returncode != 0
    assert not (tmp_path / "o").exists()


def test_a_real_ray_cluster_passes_the_check():
    """The probe accepts a live Ray GCS (a local instance started here), so --ray-address still works."""
    import ray

    from vlm_classdata.executors import check_ray_address

    if ray.is_initialized():  # another test of this worker process left its local Ray running
        ray.shutdown()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        check_ray_address(ray.get_runtime_context().gcs_address, timeout=10)
    finally:
        ray.shutdown()
