"""What signing and verifying cost per event, next to what every event costs anyway.

Baselines in the same run: serializing an event to its canonical JSON (every publish does it) and
decoding one (every consumer does it). A pipeline event is signed once by its producer and
verified by each of its consumers (two or three) and by the auditor.

    python -m bench.signing [--events N]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import uuid
from collections.abc import Callable

from shared.events import (
    DeploymentRequested,
    DeploymentRequestedData,
    parse_event,
)
from shared.identity import SIGNATURE_HEADER, SIGNER_HEADER, Signer, TrustedSigners, new_seed
from shared.models import Env, SageMakerDeploymentConfig


def per_op_us(fn: Callable[[int], object], n: int) -> float:
    best = float("inf")
    for _ in range(5):  # the best of five: this machine is shared
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def main(n: int) -> None:
    signer = Signer("guardian", new_seed())
    trusted = TrustedSigners({"guardian": [signer.public_key]})
    config = SageMakerDeploymentConfig(
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        endpoint_name="chatbot-x-staging",
        instance_type="ml.g5.2xlarge",
        instance_count=1,
        budget_usd_per_hour=15.0,
    )
    events = [
        DeploymentRequested(
            plan_id=uuid.uuid4().hex,
            actor="guardian",
            data=DeploymentRequestedData(env=Env.STAGING, config=config, estimated_usd_per_hour=1.515),
        )
        for _ in range(n)
    ]
    bodies = [e.canonical_json().encode() for e in events]
    headers = [signer.sign(b) for b in bodies]
    rows = {
        "canonical JSON (every publish)": per_op_us(lambda i: events[i].canonical_json(), n),
        "decode (every consumer)": per_op_us(lambda i: parse_event(bodies[i]), n),
        "sign (once per event)": per_op_us(lambda i: signer.sign(bodies[i]), n),
        "verify (each consumer)": per_op_us(
            lambda i: trusted.check(
                bodies[i], headers[i][SIGNER_HEADER], headers[i][SIGNATURE_HEADER], "deployment.requested", None
            ),
            n,
        ),
    }
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; {n} events")
    print(f"event body: {len(bodies[0])} bytes")
    for name, us in rows.items():
        print(f"  {name:34} {us:8.1f} us")
    decode = rows["decode (every consumer)"]
    print(
        f"ratio sign/decode: {rows['sign (once per event)'] / decode:.2f}x; "
        f"verify/decode: {rows['verify (each consumer)'] / decode:.2f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    main(parser.parse_args().events)
