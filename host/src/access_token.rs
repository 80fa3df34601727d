//! The access token's claims (RFC 9068, JWT profile for OAuth 2.0 access tokens): issued only
//! when the login is for an API (`resource_server.identifier`), with the granted scopes and the
//! rules' custom claims.

use serde_json::{Map, Value, json};

use claimsmith_sdk::Event;

/// Build the access token claims, or `None` when the event names no API.
pub fn claims(
    issuer: &str,
    event: &Event,
    scopes: &[String],
    custom: &Map<String, Value>,
    now: u64,
    ttl: u64,
) -> Option<Map<String, Value>> {
    let audience = event.audience().filter(|a| !a.is_empty())?;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer));
    claims.insert("sub".into(), json!(event.user.user_id));
    claims.insert("aud".into(), json!(audience));
    claims.insert("client_id".into(), json!(event.client.client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + ttl));
    claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
    if !scopes.is_empty() {
        claims.insert("scope".into(), json!(scopes.join(" ")));
    }
    authentication_claims(event, &mut claims);
    if let Some(org) = &event.organization {
        claims.insert("org_id".into(), json!(org.id));
    }
    for (name, value) in custom {
        claims.insert(name.clone(), value.clone());
    }
    Some(claims)
}

/// `auth_time` and `amr` from `event.authentication`, when known.
pub(crate) fn authentication_claims(event: &Event, claims: &mut Map<String, Value>) {
    let Some(authentication) = &event.authentication else {
        return;
    };
    let amr: Vec<&str> = authentication
        .methods
        .iter()
        .map(|m| m.name.as_str())
        .filter(|n| !n.is_empty())
        .collect();
    if !amr.is_empty() {
        claims.insert("amr".into(), json!(amr));
    }
    let times = authentication.methods.iter().filter_map(|m| {
        m.auth_time
            .or_else(|| m.timestamp.as_deref().and_then(rfc3339_seconds))
    });
    if let Some(auth_time) = times.max() {
        claims.insert("auth_time".into(), json!(auth_time));
    }
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp (`2026-11-22T09:14:03.512Z`).
pub(crate) fn rfc3339_seconds(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time
        .strip_suffix('Z')
        .or_else(|| time.strip_suffix("+00:00"))?;
    let mut t = time.splitn(3, ':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let s = t.next()?.split('.').next()?.parse::<i64>().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    // Days from civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::rfc3339_seconds;

    #[test]
    fn rfc3339_timestamps_become_epoch_seconds() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_seconds("2026-11-22T09:14:03.512Z"),
            Some(1_795_338_843)
        );
        assert_eq!(
            rfc3339_seconds("2000-02-29T12:00:00+00:00"),
            Some(951_825_600)
        );
        assert_eq!(rfc3339_seconds("yesterday"), None);
    }
}
