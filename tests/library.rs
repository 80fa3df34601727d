//! The host as a library, the way an issuer embeds it: build an `Issuer` once, log users in,
//! match on typed outcomes.

mod support;

use claimsmith::{ConfigError, Issuer, LoginFailure};
use claimsmith_engine::RuleFailure;
use serde_json::json;
use support::{ADD_ROLES, Setup, event};

#[test]
fn an_issuer_mints_tokens_whose_claims_follow_the_rules() {
    let setup = Setup::new("EdDSA", ADD_ROLES);
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    let tokens = login_alice(&issuer);
    assert_eq!(
        tokens.id_token_claims["https://example.com/roles"],
        json!(["admin", "editor"])
    );
    let access = tokens.access_token_claims.as_ref().unwrap();
    assert_eq!(access["aud"], "https://api.example.com");
    assert_eq!(tokens.outcome.rules.len(), 1);
    assert!(tokens.warnings.is_empty(), "{:?}", tokens.warnings);
    let jwks = serde_json::to_value(issuer.jwks()).unwrap();
    let (_, verified) = support::verify(&tokens.id_token, &jwks, "spa-client");
    assert_eq!(
        serde_json::Value::Object(tokens.id_token_claims.clone()),
        verified
    );
}

#[test]
fn login_at_a_fixed_time_sets_iat_and_exp_from_the_ttls() {
    let setup = Setup::with_header(
        "ES256",
        "id_token_ttl = 600\naccess_token_ttl = 1200",
        ADD_ROLES,
    );
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    let login = issuer.event_from_value(event("alice")).unwrap();
    let tokens = issuer.login_at(&login, 1_800_000_000).unwrap();
    assert_eq!(tokens.id_token_claims["iat"], 1_800_000_000u64);
    assert_eq!(tokens.id_token_claims["exp"], 1_800_000_600u64);
    assert_eq!(tokens.access_token_claims.unwrap()["exp"], 1_800_001_200u64);
}

#[test]
fn no_token_is_signed_for_a_clock_before_1970_or_past_9999() {
    let setup = Setup::new("ES256", ADD_ROLES);
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    let login = issuer.event_from_value(event("alice")).unwrap();
    for now in [0, 253_402_300_800, u64::MAX] {
        match issuer.login_at(&login, now) {
            Err(LoginFailure::Signing(error)) => {
                assert!(
                    error.to_string().contains("between 1970 and 9999"),
                    "{error}"
                )
            }
            other => panic!("{now}: expected no tokens, got {other:?}"),
        }
    }
    assert!(issuer.login_at(&login, 253_402_300_799).is_ok());
}

#[test]
fn a_config_built_by_hand_has_its_token_lifetimes_checked_again() {
    let setup = Setup::new("ES256", ADD_ROLES);
    let mut config = claimsmith::Config::load(&setup.config).unwrap();
    config.access_token_ttl = std::time::Duration::MAX;
    match Issuer::from_config(config) {
        Err(ConfigError::Invalid { field, message, .. }) => {
            assert_eq!(field, "access_token_ttl");
            assert!(message.contains("out of range"), "{message}");
        }
        other => panic!("expected an invalid lifetime, got {:?}", other.err()),
    }
}

#[test]
fn scope_and_updated_at_take_the_standard_forms() {
    let setup = Setup::new("ES256", ADD_ROLES);
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    let mut alice = event("alice");
    alice["transaction"]["requested_scopes"] = json!([
        "openid",
        "profile",
        "",
        "read:reports write:reports",
        "openid",
        " email  "
    ]);
    let tokens = issuer
        .login_json(alice.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let access = tokens.access_token_claims.unwrap();
    assert_eq!(
        access["scope"],
        "openid profile read:reports write:reports email"
    );
    // The ID token reads the same scopes: " email  " asks for the email claims.
    assert_eq!(tokens.id_token_claims["email"], json!("alice@acme.example"));
    // OIDC Core 5.1: a number of seconds; alice's is 2026-11-20T16:02:41.118Z.
    assert_eq!(tokens.id_token_claims["updated_at"], json!(1_795_190_561));
    alice["user"]["updated_at"] = json!("last tuesday");
    let tokens = issuer.login_json(alice.to_string().as_bytes()).unwrap();
    assert!(!tokens.id_token_claims.contains_key("updated_at"));
}

#[test]
fn a_user_id_no_id_token_may_carry_as_its_sub_is_refused_before_the_rules() {
    let setup = Setup::new("EdDSA", ADD_ROLES);
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    let mut alice = event("alice");
    alice["user"]["user_id"] = json!("a".repeat(255));
    let tokens = issuer.login_json(alice.to_string().as_bytes()).unwrap();
    assert_eq!(tokens.id_token_claims["sub"], json!("a".repeat(255)));
    alice["user"]["user_id"] = json!("a".repeat(256));
    match issuer.login_json(alice.to_string().as_bytes()) {
        Err(LoginFailure::BadEvent(error)) => {
            let error = error.to_string();
            assert!(
                error.contains("user.user_id") && error.contains("at most 255"),
                "{error}"
            );
        }
        other => panic!("expected a bad event, got {other:?}"),
    }
}

#[test]
fn every_access_token_gets_a_fresh_jti() {
    let setup = Setup::new("ES256", ADD_ROLES);
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    let login = issuer.event_from_value(event("alice")).unwrap();
    let a = issuer.login(&login).unwrap().access_token_claims.unwrap();
    let b = issuer.login(&login).unwrap().access_token_claims.unwrap();
    assert_ne!(a["jti"], b["jti"]);
}

#[test]
fn denials_and_failures_are_typed() {
    let rules = "[[rules]]\nname = \"verified\"\nmodule = \"{require-verified-email}\"\n\
                 [[rules]]\nname = \"caps\"\nmodule = \"{capabilities}\"\non_error = \"deny\"\n";
    let setup = Setup::new("RS256", rules);
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    match issuer.login_json(event("bob-unverified").to_string().as_bytes()) {
        Err(LoginFailure::Denied(denied)) => {
            assert_eq!(denied.rule, "verified");
            assert!(denied.reason.contains("verify your email"));
            assert_eq!(denied.rules.len(), 1, "later rules did not run");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    match issuer.login_json(event("alice").to_string().as_bytes()) {
        Err(LoginFailure::RuleFailed(failed)) => {
            assert_eq!(failed.rule, "caps");
            assert!(
                matches!(&failed.cause, RuleFailure::Panicked(m) if m.contains("capabilities")),
                "{:?}",
                failed.cause
            );
        }
        other => panic!("expected a rule failure, got {other:?}"),
    }
    match issuer.login_json(br#"{"user": {}}"#) {
        Err(LoginFailure::BadEvent(err)) => assert!(err.to_string().contains("user.user_id")),
        other => panic!("expected a bad event, got {other:?}"),
    }
}

#[test]
fn a_skipped_rule_leaves_no_trace_in_the_tokens_but_one_in_the_warnings() {
    let rules = format!(
        "{ADD_ROLES}[[rules]]\nname = \"caps\"\nmodule = \"{{capabilities}}\"\non_error = \"skip\"\n"
    );
    let setup = Setup::new("RS256", &rules);
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    let tokens = login_alice(&issuer);
    assert!(
        tokens
            .id_token_claims
            .contains_key("https://example.com/roles")
    );
    assert!(
        !tokens
            .id_token_claims
            .contains_key("https://example.com/capabilities")
    );
    assert!(
        tokens
            .warnings
            .iter()
            .any(|w| w.contains("caps") && w.contains("skipped")),
        "{:?}",
        tokens.warnings
    );
}

#[test]
fn a_rule_narrowed_to_another_namespace_cannot_write_outside_it() {
    let rules = ADD_ROLES.replace(
        "[rules.config]",
        "namespaces = [\"https://example.com/app/\"]\n[rules.config]",
    );
    let setup = Setup::new("RS256", &rules);
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    match issuer.login_json(event("alice").to_string().as_bytes()) {
        Err(LoginFailure::RuleFailed(failed)) => {
            let message = failed.to_string();
            assert!(
                message.contains("https://example.com/roles")
                    && message.contains("https://example.com/app/"),
                "{message}"
            );
        }
        other => panic!("expected a policy failure, got {other:?}"),
    }
}

#[test]
fn config_errors_are_typed_with_the_field() {
    let setup = Setup::new("RS256", ADD_ROLES);
    let text = std::fs::read_to_string(&setup.config)
        .unwrap()
        .replace("alg = \"RS256\"", "alg = \"HS512\"");
    std::fs::write(&setup.config, text).unwrap();
    match Issuer::from_config_file(&setup.config) {
        Err(ConfigError::Invalid { field, message, .. }) => {
            assert_eq!(field, "keys[0]");
            assert!(message.contains("HS512 is refused"), "{message}");
        }
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn compiled_rules_are_cached_by_content_and_reused_on_the_next_start() {
    use claimsmith_engine::ArtifactSource;
    let setup = Setup::with_header("EdDSA", "cache_dir = \"artifacts\"", ADD_ROLES);
    let first = Issuer::from_config_file(&setup.config).unwrap();
    let source = |issuer: &Issuer| issuer.rules()[0].artifact_source();
    assert_eq!(source(&first), ArtifactSource::Compiled);
    let artifacts: Vec<_> = std::fs::read_dir(setup.dir.path().join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert!(artifacts[0].ends_with(".cwasm"), "{artifacts:?}");

    let second = Issuer::from_config_file(&setup.config).unwrap();
    assert_eq!(source(&second), ArtifactSource::Cached);
    // The cached module behaves exactly like the compiled one.
    let tokens = login_alice(&second);
    assert_eq!(
        tokens.id_token_claims["https://example.com/roles"],
        json!(["admin", "editor"])
    );
}

#[test]
fn an_unusable_cache_dir_is_a_config_error_naming_it() {
    let setup = Setup::with_header("EdDSA", "cache_dir = \"not-a-folder\"", ADD_ROLES);
    setup.write("not-a-folder", "a file, not a folder");
    let err = Issuer::from_config_file(&setup.config).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Invalid { field, .. } if field == "cache_dir"),
        "{err}"
    );
    assert!(err.to_string().contains("not-a-folder"), "{err}");
}

#[test]
fn rules_that_share_a_module_share_its_compiled_code_but_not_their_settings() {
    let rules = format!(
        "{ADD_ROLES}\n[[rules]]\nname = \"add-roles-again\"\nmodule = \"{{add-roles}}\"\n[rules.config]\nnamespace = \"https://example.com/again\"\n"
    );
    let setup = Setup::with_header("EdDSA", "cache_dir = \"\"", &rules);
    let issuer = Issuer::from_config_file(&setup.config).unwrap();
    let [a, b] = issuer.pipeline().rules() else {
        panic!("two rules")
    };
    assert!(a.shares_code_with(b));
    let tokens = login_alice(&issuer);
    assert_eq!(
        tokens.id_token_claims["https://example.com/roles"],
        json!(["admin", "editor"])
    );
    assert_eq!(
        tokens.id_token_claims["https://example.com/again/roles"],
        json!(["admin", "editor"])
    );
}

/// Alice's login through `issuer`, which must get tokens.
fn login_alice(issuer: &Issuer) -> claimsmith::Tokens {
    issuer
        .login_json(event("alice").to_string().as_bytes())
        .unwrap_or_else(|e| panic!("alice's login failed: {e}"))
}
