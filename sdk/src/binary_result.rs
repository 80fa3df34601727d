//! A rule's result in the binary form of guest ABI versions 2 to 4 (`docs/abi.md`, sections 9
//! and 11). Version 4's commands have tags of their own (10 and up), which no older SDK writes;
//! the host refuses them from a module of an older version ([`Command::since_abi_version`]).
//!
//! The same commands as version 1's JSON result document, written with the lengths and tagged
//! values of [`binary_event`](crate::binary_event): the module writes it without a JSON
//! serializer, and the host reads it without a JSON parser. The host treats these bytes as
//! hostile: every length is checked against what is left, every string must be UTF-8, every tag
//! known, and no byte may be left over.
//!
//! ```
//! use claimsmith_sdk::{Api, binary_result};
//!
//! let mut api = Api::new();
//! api.id_token().set_custom_claim("https://example.com/roles", ["admin"]);
//! api.access().deny("no");
//! let result = api.into_result();
//! let bytes = binary_result::encode(&result);
//! assert_eq!(binary_result::decode(&bytes).unwrap(), result);
//! ```

pub use crate::binary::DecodeError;
use crate::binary::{PartWriter, Reader};
use crate::command::{Command, Factor, LogLevel, RuleResult, TokenKind};

/// The first four bytes of every encoded result.
pub const MAGIC: [u8; 4] = *b"CSR1";

const SET_CLAIM: u8 = 1;
const REMOVE_CLAIM: u8 = 2;
const ADD_SCOPE: u8 = 3;
const REMOVE_SCOPE: u8 = 4;
const DENY: u8 = 5;
const SET_APP_METADATA: u8 = 6;
const SET_USER_METADATA: u8 = 7;
const ENABLE_MFA: u8 = 8;
const LOG: u8 = 9;
// ABI version 4.
const ENABLE_MFA_WITH_OPTIONS: u8 = 10;
const CHALLENGE_WITH: u8 = 11;
const CHALLENGE_WITH_ANY: u8 = 12;
const ENROLL_WITH: u8 = 13;
const SET_SESSION_EXPIRES_AT: u8 = 14;
const SET_SESSION_IDLE_EXPIRES_AT: u8 = 15;

/// The result in binary form.
pub fn encode(result: &RuleResult) -> Vec<u8> {
    let mut w = PartWriter::new();
    w.len(result.commands.len());
    for command in &result.commands {
        match command {
            Command::SetClaim { token, name, value } => {
                w.byte(SET_CLAIM);
                w.byte(token_byte(*token));
                w.str(name);
                w.value(value);
            }
            Command::RemoveClaim { token, name } => {
                w.byte(REMOVE_CLAIM);
                w.byte(token_byte(*token));
                w.str(name);
            }
            Command::AddScope { scope } => {
                w.byte(ADD_SCOPE);
                w.str(scope);
            }
            Command::RemoveScope { scope } => {
                w.byte(REMOVE_SCOPE);
                w.str(scope);
            }
            Command::Deny { reason } => {
                w.byte(DENY);
                w.str(reason);
            }
            Command::SetAppMetadata { key, value } => {
                w.byte(SET_APP_METADATA);
                w.str(key);
                w.value(value);
            }
            Command::SetUserMetadata { key, value } => {
                w.byte(SET_USER_METADATA);
                w.str(key);
                w.value(value);
            }
            Command::EnableMfa {
                provider,
                allow_remember_browser,
            } => {
                // Without the option, the same bytes as before version 4.
                if *allow_remember_browser {
                    w.byte(ENABLE_MFA_WITH_OPTIONS);
                    w.str(provider);
                    w.bool(true);
                } else {
                    w.byte(ENABLE_MFA);
                    w.str(provider);
                }
            }
            Command::ChallengeWith {
                factor,
                additional_factors,
            } => {
                w.byte(CHALLENGE_WITH);
                write_factor(&mut w, factor);
                write_factors(&mut w, additional_factors);
            }
            Command::ChallengeWithAny { factors } => {
                w.byte(CHALLENGE_WITH_ANY);
                write_factors(&mut w, factors);
            }
            Command::EnrollWith {
                factor,
                additional_factors,
            } => {
                w.byte(ENROLL_WITH);
                write_factor(&mut w, factor);
                write_factors(&mut w, additional_factors);
            }
            Command::SetSessionExpiresAt { expires_at } => {
                w.byte(SET_SESSION_EXPIRES_AT);
                w.raw(&expires_at.to_le_bytes());
            }
            Command::SetSessionIdleExpiresAt { idle_expires_at } => {
                w.byte(SET_SESSION_IDLE_EXPIRES_AT);
                w.raw(&idle_expires_at.to_le_bytes());
            }
            Command::Log { level, message } => {
                w.byte(LOG);
                w.byte(*level as u8);
                w.str(message);
            }
        }
    }
    let mut out = MAGIC.to_vec();
    w.finish_into(&mut out);
    out
}

/// Read a result written by [`encode`]. Nothing in `bytes` is trusted.
pub fn decode(bytes: &[u8]) -> Result<RuleResult, DecodeError> {
    let mut r = Reader::new(bytes);
    r.magic(MAGIC, "not an encoded result (wrong magic)");
    r.begin_part("the result's text");
    // The smallest command (a tag and an empty string) takes five bytes.
    let count = r.len("commands", 5);
    let mut commands = Vec::with_capacity(count.min(crate::binary::MAX_RESERVED));
    for _ in 0..count {
        if r.failed() {
            break;
        }
        let command = match r.byte("commands.op") {
            SET_CLAIM => Command::SetClaim {
                token: token(&mut r, "set_claim.token"),
                name: r.string("set_claim.name"),
                value: r.value("set_claim.value", 0),
            },
            REMOVE_CLAIM => Command::RemoveClaim {
                token: token(&mut r, "remove_claim.token"),
                name: r.string("remove_claim.name"),
            },
            ADD_SCOPE => Command::AddScope {
                scope: r.string("add_scope.scope"),
            },
            REMOVE_SCOPE => Command::RemoveScope {
                scope: r.string("remove_scope.scope"),
            },
            DENY => Command::Deny {
                reason: r.string("deny.reason"),
            },
            SET_APP_METADATA => Command::SetAppMetadata {
                key: r.string("set_app_metadata.key"),
                value: r.value("set_app_metadata.value", 0),
            },
            SET_USER_METADATA => Command::SetUserMetadata {
                key: r.string("set_user_metadata.key"),
                value: r.value("set_user_metadata.value", 0),
            },
            ENABLE_MFA => Command::EnableMfa {
                provider: r.string("enable_mfa.provider"),
                allow_remember_browser: false,
            },
            ENABLE_MFA_WITH_OPTIONS => Command::EnableMfa {
                provider: r.string("enable_mfa.provider"),
                allow_remember_browser: r.bool("enable_mfa.allow_remember_browser"),
            },
            CHALLENGE_WITH => Command::ChallengeWith {
                factor: read_factor(&mut r, "challenge_with.factor"),
                additional_factors: read_factors(&mut r, "challenge_with.additional_factors"),
            },
            CHALLENGE_WITH_ANY => Command::ChallengeWithAny {
                factors: read_factors(&mut r, "challenge_with_any.factors"),
            },
            ENROLL_WITH => Command::EnrollWith {
                factor: read_factor(&mut r, "enroll_with.factor"),
                additional_factors: read_factors(&mut r, "enroll_with.additional_factors"),
            },
            SET_SESSION_EXPIRES_AT => Command::SetSessionExpiresAt {
                expires_at: u64::from_le_bytes(r.array("set_session_expires_at.expires_at")),
            },
            SET_SESSION_IDLE_EXPIRES_AT => Command::SetSessionIdleExpiresAt {
                idle_expires_at: u64::from_le_bytes(
                    r.array("set_session_idle_expires_at.idle_expires_at"),
                ),
            },
            LOG => {
                let level = r.byte("log.level");
                let level = LogLevel::from_i32(level as i32).unwrap_or_else(|| {
                    r.fail("log.level", "unknown log level");
                    LogLevel::Info
                });
                Command::Log {
                    level,
                    message: r.string("log.message"),
                }
            }
            _ => {
                r.fail("commands.op", "unknown command");
                break;
            }
        };
        commands.push(command);
    }
    r.end_part("the result's text");
    r.finish()?;
    Ok(RuleResult { commands })
}

/// A factor: its type, then its options.
fn write_factor(w: &mut PartWriter, factor: &Factor) {
    w.str(&factor.kind);
    w.map(&factor.options);
}

fn write_factors(w: &mut PartWriter, factors: &[Factor]) {
    w.len(factors.len());
    for factor in factors {
        write_factor(w, factor);
    }
}

fn read_factor(r: &mut Reader<'_>, field: &'static str) -> Factor {
    Factor {
        kind: r.string(field),
        options: r.map(field, 0),
    }
}

fn read_factors(r: &mut Reader<'_>, field: &'static str) -> Vec<Factor> {
    // A factor takes at least eight bytes: an empty type and an empty map.
    let count = r.len(field, 8);
    let mut factors = Vec::with_capacity(count.min(crate::binary::MAX_RESERVED));
    for _ in 0..count {
        if r.failed() {
            break;
        }
        factors.push(read_factor(r, field));
    }
    factors
}

fn token_byte(token: TokenKind) -> u8 {
    match token {
        TokenKind::IdToken => 0,
        TokenKind::AccessToken => 1,
    }
}

fn token(r: &mut Reader<'_>, field: &'static str) -> TokenKind {
    match r.byte(field) {
        0 => TokenKind::IdToken,
        1 => TokenKind::AccessToken,
        _ => {
            r.fail(field, "unknown token (0 is id_token, 1 is access_token)");
            TokenKind::IdToken
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn every_command() -> RuleResult {
        RuleResult {
            commands: vec![
                Command::SetClaim {
                    token: TokenKind::IdToken,
                    name: "https://e.test/roles".into(),
                    value: json!(["admin", {"n": -1, "f": 0.5, "u": 7, "z": null, "t": true}]),
                },
                Command::RemoveClaim {
                    token: TokenKind::AccessToken,
                    name: "https://e.test/x".into(),
                },
                Command::AddScope {
                    scope: "read".into(),
                },
                Command::RemoveScope {
                    scope: "write".into(),
                },
                Command::SetAppMetadata {
                    key: "plan".into(),
                    value: json!("pro"),
                },
                Command::SetUserMetadata {
                    key: "theme".into(),
                    value: Value::Null,
                },
                Command::EnableMfa {
                    provider: "any".into(),
                    allow_remember_browser: false,
                },
                Command::EnableMfa {
                    provider: "duo".into(),
                    allow_remember_browser: true,
                },
                Command::ChallengeWith {
                    factor: Factor::new("otp"),
                    additional_factors: vec![
                        Factor::new("phone").with_option("preferredMethod", "sms"),
                        Factor::new("email"),
                    ],
                },
                Command::ChallengeWithAny {
                    factors: vec![Factor::new("push-notification"), Factor::new("otp")],
                },
                Command::EnrollWith {
                    factor: Factor::new("webauthn-platform"),
                    additional_factors: vec![],
                },
                Command::SetSessionExpiresAt {
                    expires_at: 1_796_405_400_123,
                },
                Command::SetSessionIdleExpiresAt {
                    idle_expires_at: u64::MAX,
                },
                Command::Log {
                    level: LogLevel::Warn,
                    message: "ü".into(),
                },
                Command::Deny {
                    reason: "no".into(),
                },
            ],
        }
    }

    #[test]
    fn every_command_survives_the_round_trip() {
        let result = every_command();
        assert_eq!(decode(&encode(&result)).unwrap(), result);
        let empty = RuleResult::default();
        assert_eq!(decode(&encode(&empty)).unwrap(), empty);
    }

    #[test]
    fn enable_mfa_without_options_keeps_its_version_2_bytes() {
        let plain = RuleResult {
            commands: vec![Command::EnableMfa {
                provider: "any".into(),
                allow_remember_browser: false,
            }],
        };
        let bytes = encode(&plain);
        // magic, text length 3, "any", count 1, tag 8, the string's offset and length.
        let mut expected = MAGIC.to_vec();
        expected.extend_from_slice(&3u32.to_le_bytes());
        expected.extend_from_slice(b"any");
        expected.extend_from_slice(&1u32.to_le_bytes());
        expected.push(ENABLE_MFA);
        assert!(bytes.starts_with(&expected), "{bytes:?}");
        assert!(!bytes[expected.len()..].contains(&ENABLE_MFA_WITH_OPTIONS));
    }

    #[test]
    fn hostile_bytes_are_errors_that_name_the_field() {
        let good = encode(&every_command());
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "prefix of {cut} bytes");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5A;
            let _ = decode(&bad);
        }
        // By hand: the magic, the text's length, the text, then the structure.
        let result = |text: &[u8], structure: &[u8]| {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
            bytes.extend_from_slice(text);
            bytes.extend_from_slice(structure);
            bytes
        };
        let mut bad_token = 1u32.to_le_bytes().to_vec();
        bad_token.extend_from_slice(&[SET_CLAIM, 7]);
        bad_token.extend_from_slice(&0u32.to_le_bytes());
        bad_token.push(0);
        assert_eq!(
            decode(&result(b"", &bad_token)).unwrap_err().field,
            "set_claim.token"
        );

        let mut bad_op = 1u32.to_le_bytes().to_vec();
        bad_op.extend_from_slice(&[99, 0, 0, 0, 0]);
        let err = decode(&result(b"", &bad_op)).unwrap_err();
        assert_eq!((err.field, err.problem), ("commands.op", "unknown command"));

        let mut deny = 1u32.to_le_bytes().to_vec();
        deny.push(DENY);
        deny.extend_from_slice(&2u32.to_le_bytes());
        let err = decode(&result(&[0xC3, 0x28], &deny)).unwrap_err();
        assert_eq!(
            (err.field, err.problem),
            ("the result's text", "the text is not UTF-8")
        );
        assert_eq!(
            decode(&result(b"no", &deny)).unwrap(),
            RuleResult {
                commands: vec![Command::Deny {
                    reason: "no".into()
                }]
            }
        );
        let err = decode(&result(b"no!", &deny)).unwrap_err();
        assert_eq!(
            (err.field, err.problem),
            ("the result's text", "text left over")
        );

        assert_eq!(decode(b"{\"commands\":[]}").unwrap_err().field, "magic");

        // Nested arrays that each claim as many items as there are bytes left stop at the
        // first problem: nothing is built for the claimed counts.
        let mut nested = 1u32.to_le_bytes().to_vec();
        nested.extend_from_slice(&[SET_CLAIM, 0, 0, 0, 0, 0]);
        for _ in 0..200 {
            nested.push(7);
            nested.extend_from_slice(&200_000u32.to_le_bytes());
        }
        nested.resize(nested.len() + 200_000, 0);
        let err = decode(&result(b"", &nested)).unwrap_err();
        assert_eq!(err.problem, "values nest too deep");
    }
}
