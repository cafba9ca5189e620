"""Reference-style REST: Flask on gunicorn (gthread), PyJWT verification, a synchronous SQLAlchemy read.

This is how the design this project comes from serves a read: the bearer token is checked for its
signature and claims only (no session lookup), then one query. Started by the benchmark runner as

    BENCH_DB_URL=sqlite:///var/arcana.db BENCH_JWT_SECRET=… \\
        gunicorn -k gthread -w 1 --threads 8 -b 127.0.0.1:8002 benchmarks.baselines.flask_app:app
"""

from __future__ import annotations

import os
from datetime import UTC
from typing import Any

import jwt
from flask import Flask, abort, jsonify, request

from benchmarks.baselines.store import get_user

SECRET = os.environ["BENCH_JWT_SECRET"]
app = Flask(__name__)


@app.get("/api/v1/users/<user_id>")
def read(user_id: str) -> Any:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        abort(401)
    try:
        jwt.decode(token, SECRET, algorithms=["HS256"], audience="arcana", issuer="arcana")
    except jwt.PyJWTError:
        abort(401)
    row = get_user(user_id)
    if row is None:
        abort(404)
    for key in ("created_at", "updated_at", "last_login_at"):
        if row[key] is not None:
            row[key] = row[key].replace(tzinfo=UTC).isoformat()
    row["is_verified"] = bool(row["is_verified"])
    return jsonify(row)
