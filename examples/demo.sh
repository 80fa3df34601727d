#!/usr/bin/env bash
# The demo: build the claimsmith binary and the example rules, generate demo keys once, then run
# Alice's login and print both tokens with their decoded claims.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
cargo build --release --quiet -p claimsmith-cli
bin=target/release/claimsmith
$bin build >/dev/null
for alg in rs256 eddsa; do
  key=examples/keys/signing-$alg.pem
  [ -f "$key" ] || $bin keygen --alg "$( [ $alg = rs256 ] && echo RS256 || echo EdDSA )" --out "$key"
done
$bin check --config examples/claimsmith.toml
echo "--- alice logs in (examples/events/alice.json) ---"
$bin run --config examples/claimsmith.toml --event examples/events/alice.json --explain --pretty
