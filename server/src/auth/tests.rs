//! Every scheme accepted and refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue};

use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
        .as_ref()
        .to_vec()
}

#[test]
fn none_accepts_anything_and_kinds_are_named() {
    assert!(
        HookAuth::None
            .verify(&HeaderMap::new(), b"", SystemTime::now())
            .is_ok()
    );
    assert_eq!(HookAuth::None.kind(), "none");
    let key = HookAuth::api_key_header("x-key", "k".into()).unwrap();
    assert_eq!(key.kind(), "api_key");
    let sw = HookAuth::standard_webhooks(vec!["whsec_c2VjcmV0".into()]).unwrap();
    assert_eq!(sw.kind(), "standard_webhooks");
    let z = HookAuth::zitadel_signature("key".into()).unwrap();
    assert_eq!(z.kind(), "zitadel_signature");
}

#[test]
fn api_key_header_right_wrong_missing_doubled() {
    let auth = HookAuth::api_key_header("X-Hook-Key", "s3cret".into()).unwrap();
    let now = SystemTime::now();
    assert_eq!(
        auth.verify(&headers(&[("x-hook-key", "s3cret")]), b"{}", now),
        Ok(())
    );
    assert_eq!(
        auth.verify(&headers(&[("x-hook-key", "s3cre")]), b"{}", now),
        Err(AuthFailure::Mismatch)
    );
    assert_eq!(
        auth.verify(&headers(&[("x-hook-key", "s3cret!")]), b"{}", now),
        Err(AuthFailure::Mismatch)
    );
    assert_eq!(
        auth.verify(&headers(&[("authorization", "s3cret")]), b"{}", now),
        Err(AuthFailure::Missing)
    );
    assert_eq!(
        auth.verify(
            &headers(&[("x-hook-key", "s3cret"), ("x-hook-key", "other")]),
            b"{}",
            now
        ),
        Err(AuthFailure::Malformed)
    );
    // Okta's default: the key is the whole Authorization header.
    let okta = HookAuth::api_key_header("Authorization", "Basic abc".into()).unwrap();
    assert_eq!(
        okta.verify(&headers(&[("authorization", "Basic abc")]), b"", now),
        Ok(())
    );
}

#[test]
fn api_key_cookie_form() {
    let auth = HookAuth::api_key_cookie("hook_key", "s3cret".into()).unwrap();
    let now = SystemTime::now();
    assert_eq!(
        auth.verify(
            &headers(&[("cookie", "other=1; hook_key=s3cret; last=2")]),
            b"",
            now
        ),
        Ok(())
    );
    assert_eq!(
        auth.verify(&headers(&[("cookie", "hook_key=\"s3cret\"")]), b"", now),
        Ok(())
    );
    assert_eq!(
        auth.verify(
            &headers(&[("cookie", "a=1"), ("cookie", "hook_key=s3cret")]),
            b"",
            now
        ),
        Ok(())
    );
    assert_eq!(
        auth.verify(&headers(&[("cookie", "hook_key=wrong")]), b"", now),
        Err(AuthFailure::Mismatch)
    );
    assert_eq!(
        auth.verify(&headers(&[("cookie", "hook_keyx=s3cret")]), b"", now),
        Err(AuthFailure::Missing)
    );
    assert_eq!(
        auth.verify(&headers(&[("hook_key", "s3cret")]), b"", now),
        Err(AuthFailure::Missing)
    );
    assert_eq!(
        auth.verify(
            &headers(&[("cookie", "hook_key=s3cret; hook_key=again")]),
            b"",
            now
        ),
        Err(AuthFailure::Malformed)
    );
}

#[test]
fn setup_errors_never_show_the_secret() {
    assert!(matches!(
        HookAuth::api_key_header("bad header", "k".into()),
        Err(AuthSetupError::BadName(..))
    ));
    assert!(matches!(
        HookAuth::api_key_cookie("a;b", "k".into()),
        Err(AuthSetupError::BadName(..))
    ));
    assert!(matches!(
        HookAuth::api_key_header("x-key", String::new()),
        Err(AuthSetupError::Empty(_))
    ));
    assert!(matches!(
        HookAuth::zitadel_signature(String::new()),
        Err(AuthSetupError::Empty(_))
    ));
    assert!(matches!(
        HookAuth::standard_webhooks(vec![]),
        Err(AuthSetupError::NoSecrets)
    ));
    assert!(matches!(
        HookAuth::standard_webhooks(vec!["whsec_".into()]),
        Err(AuthSetupError::Empty(_))
    ));
    let bad = HookAuth::standard_webhooks(vec!["whsec_c2VjcmV0".into(), "whsec_no!base64".into()]);
    match bad {
        Err(error @ AuthSetupError::BadSecret { index: 2, .. }) => {
            assert!(!error.to_string().contains("no!base64"), "{error}")
        }
        other => panic!("expected a bad secret, got {:?}", other.err()),
    }
    assert!(matches!(
        HookAuth::standard_webhooks(vec!["v1a,whpk_abc".into()]),
        Err(AuthSetupError::BadSecret { .. })
    ));
    assert_eq!(format!("{:?}", Secret(b"hunter2".to_vec())), "[REDACTED]");
}

/// The Standard Webhooks libraries' own test vector.
#[test]
fn standard_webhooks_reference_vector() {
    let auth =
        HookAuth::standard_webhooks(vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()]).unwrap();
    let map = headers(&[
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("webhook-timestamp", "1614265330"),
        (
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ]);
    assert_eq!(
        auth.verify(&map, br#"{"test": 2432232314}"#, at(1_614_265_330)),
        Ok(())
    );
    assert_eq!(
        auth.verify(&map, br#"{"test": 2432232315}"#, at(1_614_265_330)),
        Err(AuthFailure::BadSignature)
    );
}

const KEY_A: &[u8] = b"first-secret-key-bytes-000000001";
const KEY_B: &[u8] = b"second-secret-key-bytes-00000002";

fn whsec(key: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(key))
}

fn standard_sig(key: &[u8], id: &str, ts: u64, body: &[u8]) -> String {
    let mut signed = format!("{id}.{ts}.").into_bytes();
    signed.extend_from_slice(body);
    format!("v1,{}", STANDARD.encode(mac(key, &signed)))
}

fn webhook(signature: &str, ts: u64) -> HeaderMap {
    headers(&[
        ("webhook-id", "2e0c5c0e-4f3b-4a4e-8f43-3c1c1f6a9d10"),
        ("webhook-timestamp", &ts.to_string()),
        ("webhook-signature", signature),
    ])
}

#[test]
fn standard_webhooks_signatures_rotation_lists_and_time() {
    let body = br#"{"user_id":"u1","claims":{}}"#;
    let id = "2e0c5c0e-4f3b-4a4e-8f43-3c1c1f6a9d10";
    let ts = 1_750_000_000;
    let good_a = standard_sig(KEY_A, id, ts, body);
    let good_b = standard_sig(KEY_B, id, ts, body);
    let wrong = standard_sig(b"not-the-key", id, ts, body);

    // Supabase's form of the secret: `v1,whsec_...`.
    let auth = HookAuth::standard_webhooks(vec![format!("v1,{}", whsec(KEY_A))]).unwrap();
    assert_eq!(auth.verify(&webhook(&good_a, ts), body, at(ts)), Ok(()));
    assert_eq!(
        auth.verify(&webhook(&wrong, ts), body, at(ts)),
        Err(AuthFailure::BadSignature)
    );
    assert_eq!(
        auth.verify(&webhook(&good_a, ts), b"{\"tampered\":1}", at(ts)),
        Err(AuthFailure::BadSignature)
    );
    // Tolerance: five minutes either way.
    assert_eq!(
        auth.verify(&webhook(&good_a, ts), body, at(ts + 300)),
        Ok(())
    );
    assert_eq!(
        auth.verify(&webhook(&good_a, ts), body, at(ts - 300)),
        Ok(())
    );
    assert_eq!(
        auth.verify(&webhook(&good_a, ts), body, at(ts + 301)),
        Err(AuthFailure::StaleTimestamp)
    );
    assert_eq!(
        auth.verify(&webhook(&good_a, ts), body, at(ts - 301)),
        Err(AuthFailure::StaleTimestamp)
    );
    // Signature lists: the spec's spaces, Supabase's ", ", plain commas.
    for list in [
        format!("{wrong} {good_a}"),
        format!("{wrong}, {good_a}"),
        format!("{good_a},{wrong}"),
        format!("v1a,c2lnbmF0dXJl {good_a}"),
    ] {
        assert_eq!(
            auth.verify(&webhook(&list, ts), body, at(ts)),
            Ok(()),
            "{list}"
        );
    }
    assert_eq!(
        auth.verify(&webhook(&format!("{wrong}, {wrong}"), ts), body, at(ts)),
        Err(AuthFailure::BadSignature)
    );
    // Rotation: either configured secret signs; `|` separates secrets as Supabase's setting does.
    let rotated = HookAuth::standard_webhooks(vec![whsec(KEY_A), whsec(KEY_B)]).unwrap();
    let piped =
        HookAuth::standard_webhooks(vec![format!("v1,{}|v1,{}", whsec(KEY_A), whsec(KEY_B))])
            .unwrap();
    for auth in [&rotated, &piped] {
        assert_eq!(auth.verify(&webhook(&good_a, ts), body, at(ts)), Ok(()));
        assert_eq!(auth.verify(&webhook(&good_b, ts), body, at(ts)), Ok(()));
        assert_eq!(
            auth.verify(&webhook(&wrong, ts), body, at(ts)),
            Err(AuthFailure::BadSignature)
        );
    }
    let only_a = HookAuth::standard_webhooks(vec![whsec(KEY_A)]).unwrap();
    assert_eq!(
        only_a.verify(&webhook(&good_b, ts), body, at(ts)),
        Err(AuthFailure::BadSignature)
    );
}

#[test]
fn standard_webhooks_missing_and_malformed_headers() {
    let auth = HookAuth::standard_webhooks(vec![whsec(KEY_A)]).unwrap();
    let ts = 1_750_000_000;
    let sig = standard_sig(KEY_A, "id", ts, b"{}");
    let now = at(ts);
    let mut no_id = webhook(&sig, ts);
    no_id.remove("webhook-id");
    assert_eq!(auth.verify(&no_id, b"{}", now), Err(AuthFailure::Missing));
    let mut no_sig = webhook(&sig, ts);
    no_sig.remove("webhook-signature");
    assert_eq!(auth.verify(&no_sig, b"{}", now), Err(AuthFailure::Missing));
    let mut no_ts = webhook(&sig, ts);
    no_ts.remove("webhook-timestamp");
    assert_eq!(auth.verify(&no_ts, b"{}", now), Err(AuthFailure::Missing));
    let mut bad_ts = webhook(&sig, ts);
    bad_ts.insert("webhook-timestamp", HeaderValue::from_static("soon"));
    assert_eq!(
        auth.verify(&bad_ts, b"{}", now),
        Err(AuthFailure::Malformed)
    );
    assert_eq!(
        auth.verify(&webhook("v1", ts), b"{}", now),
        Err(AuthFailure::Malformed)
    );
    assert_eq!(
        auth.verify(&webhook("v2,abc", ts), b"{}", now),
        Err(AuthFailure::Malformed)
    );
}

fn zitadel_header(key: &[u8], ts: u64, body: &[u8]) -> String {
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(body);
    let hex: String = mac(key, &signed)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={ts},v1={hex}")
}

#[test]
fn zitadel_signature_both_header_names_lists_and_time() {
    let key = "kP4vGd2mF6rLw8Zq";
    let auth = HookAuth::zitadel_signature(key.into()).unwrap();
    let body = br#"{"function":"function/preaccesstoken"}"#;
    let ts = 1_750_000_000;
    let good = zitadel_header(key.as_bytes(), ts, body);
    let wrong = zitadel_header(b"another-key", ts, body);
    for name in ["zitadel-signature", "x-zitadel-signature"] {
        assert_eq!(
            auth.verify(&headers(&[(name, &good)]), body, at(ts)),
            Ok(()),
            "{name}"
        );
        assert_eq!(
            auth.verify(&headers(&[(name, &wrong)]), body, at(ts)),
            Err(AuthFailure::BadSignature)
        );
    }
    // Several `v1=`, one of them right (Zitadel signs once per key).
    let bad_v1 = wrong.split_once(",v1=").unwrap().1;
    let list = format!("{good},v1={bad_v1}");
    let list_first_bad = format!("t={ts},v1={bad_v1},{}", good.split_once(',').unwrap().1);
    for header in [list, list_first_bad] {
        assert_eq!(
            auth.verify(&headers(&[("zitadel-signature", &header)]), body, at(ts)),
            Ok(()),
            "{header}"
        );
    }
    assert_eq!(
        auth.verify(
            &headers(&[("zitadel-signature", &good)]),
            b"{\"other\":1}",
            at(ts)
        ),
        Err(AuthFailure::BadSignature)
    );
    // 300 s, Zitadel's DefaultTolerance.
    assert_eq!(
        auth.verify(
            &headers(&[("zitadel-signature", &good)]),
            body,
            at(ts + 300)
        ),
        Ok(())
    );
    assert_eq!(
        auth.verify(
            &headers(&[("zitadel-signature", &good)]),
            body,
            at(ts + 301)
        ),
        Err(AuthFailure::StaleTimestamp)
    );
    assert_eq!(
        auth.verify(
            &headers(&[("zitadel-signature", &good)]),
            body,
            at(ts - 301)
        ),
        Err(AuthFailure::StaleTimestamp)
    );
    assert_eq!(
        auth.verify(&headers(&[("x-other", &good)]), body, at(ts)),
        Err(AuthFailure::Missing)
    );
    for malformed in [
        "v1=00".to_owned(),
        "garbage".to_owned(),
        format!("t=abc,{}", good.split_once(',').unwrap().1),
    ] {
        assert_eq!(
            auth.verify(&headers(&[("zitadel-signature", &malformed)]), body, at(ts)),
            Err(AuthFailure::Malformed),
            "{malformed}"
        );
    }
    assert_eq!(
        auth.verify(
            &headers(&[("zitadel-signature", &format!("t={ts},v1=zz"))]),
            body,
            at(ts)
        ),
        Err(AuthFailure::BadSignature)
    );
}

#[test]
fn timestamps_past_what_the_clock_holds_are_stale_not_a_panic() {
    let body = b"{}";
    let webhooks = HookAuth::standard_webhooks(vec![whsec(KEY_A)]).unwrap();
    let zitadel = HookAuth::zitadel_signature("kP4vGd2mF6rLw8Zq".into()).unwrap();
    for ts in [u64::MAX, i64::MAX as u64 + 1, i64::MAX as u64] {
        let sig = standard_sig(KEY_A, "2e0c5c0e-4f3b-4a4e-8f43-3c1c1f6a9d10", ts, body);
        assert_eq!(
            webhooks.verify(&webhook(&sig, ts), body, at(1_750_000_000)),
            Err(AuthFailure::StaleTimestamp),
            "{ts}"
        );
        let header = zitadel_header(b"kP4vGd2mF6rLw8Zq", ts, body);
        assert_eq!(
            zitadel.verify(
                &headers(&[("zitadel-signature", &header)]),
                body,
                at(1_750_000_000)
            ),
            Err(AuthFailure::StaleTimestamp),
            "{ts}"
        );
    }
}

#[test]
fn signature_lists_are_capped_and_short_signatures_never_match() {
    let body = br#"{"user_id":"u1"}"#;
    let id = "2e0c5c0e-4f3b-4a4e-8f43-3c1c1f6a9d10";
    let ts = 1_750_000_000;
    let auth = HookAuth::standard_webhooks(vec![whsec(KEY_A)]).unwrap();
    let good = standard_sig(KEY_A, id, ts, body);
    let filler = |n: usize| vec!["v1,AA=="; n].join(" ");
    // Sixteen entries, the right one last: accepted.
    let sixteen = format!("{} {good}", filler(15));
    assert_eq!(auth.verify(&webhook(&sixteen, ts), body, at(ts)), Ok(()));
    // Seventeen, or the thousands that fit in a header: refused before any HMAC.
    for list in [format!("{} {good}", filler(16)), filler(20_000)] {
        assert_eq!(
            auth.verify(&webhook(&list, ts), body, at(ts)),
            Err(AuthFailure::Malformed)
        );
    }
    // A truncated signature is not a prefix match.
    let mac_bytes = STANDARD.decode(good.strip_prefix("v1,").unwrap()).unwrap();
    let short = format!("v1,{}", STANDARD.encode(&mac_bytes[..31]));
    assert_eq!(
        auth.verify(&webhook(&short, ts), body, at(ts)),
        Err(AuthFailure::BadSignature)
    );

    let key = "kP4vGd2mF6rLw8Zq";
    let zitadel = HookAuth::zitadel_signature(key.into()).unwrap();
    let good = zitadel_header(key.as_bytes(), ts, body);
    let (_, v1) = good.split_once(',').unwrap();
    let many = |n: usize| format!("t={ts},{}{v1}", "v1=00,".repeat(n));
    assert_eq!(
        zitadel.verify(&headers(&[("zitadel-signature", &many(15))]), body, at(ts)),
        Ok(())
    );
    assert_eq!(
        zitadel.verify(&headers(&[("zitadel-signature", &many(16))]), body, at(ts)),
        Err(AuthFailure::Malformed)
    );
}

/// The check of the headers alone, without what it keeps for the body.
fn headers_only(auth: &HookAuth, headers: &HeaderMap, now: SystemTime) -> Result<(), AuthFailure> {
    auth.verify_headers(headers, now).map(drop)
}

#[test]
fn headers_alone_refuse_a_missing_stale_or_malformed_signature_before_the_body() {
    let ts = 1_750_000_000;
    let body = b"{}";
    let webhooks = HookAuth::standard_webhooks(vec![whsec(KEY_A)]).unwrap();
    let good = standard_sig(KEY_A, "2e0c5c0e-4f3b-4a4e-8f43-3c1c1f6a9d10", ts, body);
    // Well-formed and fresh: the body decides (a wrong signature still passes this step).
    assert_eq!(headers_only(&webhooks, &webhook(&good, ts), at(ts)), Ok(()));
    assert_eq!(
        headers_only(&webhooks, &webhook("v1,AA==", ts), at(ts)),
        Ok(())
    );
    assert_eq!(
        headers_only(&webhooks, &headers(&[]), at(ts)),
        Err(AuthFailure::Missing)
    );
    assert_eq!(
        headers_only(&webhooks, &webhook(&good, ts), at(ts + 301)),
        Err(AuthFailure::StaleTimestamp)
    );
    assert_eq!(
        headers_only(&webhooks, &webhook("v1", ts), at(ts)),
        Err(AuthFailure::Malformed)
    );
    let zitadel = HookAuth::zitadel_signature("kP4vGd2mF6rLw8Zq".into()).unwrap();
    let header = zitadel_header(b"kP4vGd2mF6rLw8Zq", ts, body);
    for name in ["zitadel-signature", "x-zitadel-signature"] {
        assert_eq!(
            headers_only(&zitadel, &headers(&[(name, &header)]), at(ts)),
            Ok(())
        );
        assert_eq!(
            headers_only(&zitadel, &headers(&[(name, &header)]), at(ts - 301)),
            Err(AuthFailure::StaleTimestamp)
        );
    }
    assert_eq!(
        headers_only(&zitadel, &headers(&[]), at(ts)),
        Err(AuthFailure::Missing)
    );
    // A key is checked whole on the headers.
    let key = HookAuth::api_key_header("Authorization", "Bearer k".into()).unwrap();
    assert_eq!(
        headers_only(&key, &headers(&[("authorization", "Bearer k")]), at(ts)),
        Ok(())
    );
    assert_eq!(
        headers_only(&key, &headers(&[("authorization", "Bearer x")]), at(ts)),
        Err(AuthFailure::Mismatch)
    );
}
