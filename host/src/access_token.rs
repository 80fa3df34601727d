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
    // Space-delimited scope tokens, each once: an element the issuer sent with spaces in it
    // ("read write") is its tokens, and an empty one is none.
    let mut tokens: Vec<&str> = Vec::new();
    for token in scopes
        .iter()
        .flat_map(|scope| scope.split_ascii_whitespace())
    {
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    if !tokens.is_empty() {
        claims.insert("scope".into(), json!(tokens.join(" ")));
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

/// Seconds since the epoch of an RFC 3339 timestamp (`2026-11-22T09:14:03.512Z`,
/// `2026-11-22T10:14:03+01:00`; `T` and `Z` in either case); `None` for anything else, a day
/// the month does not have included.
pub(crate) fn rfc3339_seconds(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't'])?;
    let mut d = date.splitn(3, '-').map(digits);
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    // The offset: `Z`, or `+HH:MM` / `-HH:MM` after the seconds.
    let (time, offset) = match time.strip_suffix(['Z', 'z']) {
        Some(time) => (time, 0),
        None => {
            let at = time.rfind(['+', '-'])?;
            let (time, offset) = time.split_at(at);
            let (sign, offset) = offset.split_at(1);
            let (oh, om) = offset.split_once(':')?;
            let (oh, om) = (digits(oh)?, digits(om)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let minutes = oh * 60 + om;
            (time, if sign == "-" { -minutes } else { minutes })
        }
    };
    let mut t = time.splitn(3, ':');
    let (h, min) = (digits(t.next()?)?, digits(t.next()?)?);
    let seconds = t.next()?;
    let (s, fraction) = match seconds.split_once('.') {
        Some((s, fraction)) => (s, Some(fraction)),
        None => (seconds, None),
    };
    // Any number of fraction digits (RFC 3339 `time-secfrac`); whole seconds are kept.
    if fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let s = digits(s)?;
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&m) || !(1..=month_days).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    // Days from civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + s - offset * 60)
}

/// A run of ASCII digits as a number (no sign, no spaces).
fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
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
        // Offsets, either case of `T` and `Z`.
        assert_eq!(
            rfc3339_seconds("2026-11-22T10:14:03.512+01:00"),
            Some(1_795_338_843)
        );
        assert_eq!(
            rfc3339_seconds("2026-11-22t04:44:03-04:30"),
            Some(1_795_338_843)
        );
        assert_eq!(rfc3339_seconds("2026-11-22t09:14:03z"), Some(1_795_338_843));
        // Days the month does not have, and what is not RFC 3339.
        for bad in [
            "2026-02-29T00:00:00Z",
            "2026-02-31T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-22T09:14:03",
            "2026-11-22T09:14:03+0100",
            "2026-11-22T09:14:03+24:00",
            "2026-11-22T09:14:03.Z",
            "2026-11-22T09:14:+3Z",
            "+2026-11-22T09:14:03Z",
        ] {
            assert_eq!(rfc3339_seconds(bad), None, "{bad}");
        }
        assert_eq!(rfc3339_seconds("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        // A fraction of any length (Go and .NET write up to 7 or 9 digits, others more).
        assert_eq!(
            rfc3339_seconds("2026-11-22T09:14:03.1234567890123Z"),
            Some(1_795_338_843)
        );
        assert_eq!(rfc3339_seconds("2026-11-22T09:14:03.12a4Z"), None);
    }
}
