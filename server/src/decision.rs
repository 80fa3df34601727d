//! The `outcome` format's answer, for issuers that sign their own tokens: only what the rules
//! decided (their custom claims per token, the scopes they added and removed, metadata updates,
//! MFA, logs), never a registered claim such as `iss`, `sub` or `aud`.

use serde_json::{Value, json};

use claimsmith_engine::Outcome;

/// `{"id_token": {..}, "access_token": {..}, "scopes_added": [..], "scopes_removed": [..],
/// "app_metadata": {..}, "user_metadata": {..}, "mfa": [..], "mfa_allow_remember_browser": bool,
/// "authentication": [..], "session": {"expires_at", "idle_expires_at"}, "logs": [..],
/// "id_token_removed": [..], "access_token_removed": [..]}`: the last two name the claims the
/// rules removed, for an issuer that passed its own claims in `issuer_claims`.
pub(crate) fn decision(outcome: &Outcome) -> Value {
    json!({
        "id_token": outcome.id_token,
        "access_token": outcome.access_token,
        "scopes_added": outcome.scopes_added,
        "scopes_removed": outcome.scopes_removed,
        "app_metadata": outcome.app_metadata,
        "user_metadata": outcome.user_metadata,
        "mfa": outcome.mfa,
        "mfa_allow_remember_browser": outcome.mfa_allow_remember_browser,
        "authentication": outcome.authentication,
        "session": outcome.session,
        "logs": outcome.logs,
        "id_token_removed": outcome.id_token_removed,
        "access_token_removed": outcome.access_token_removed,
    })
}
