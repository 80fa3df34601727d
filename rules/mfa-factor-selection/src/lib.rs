//! `mfa-factor-selection`: challenge the user with their preferred factor (the Auth0 action
//! "MFA factor selection"): `user_metadata.preferred_factor` if the user enrolled it, else any of
//! their enrolled factors (`challengeWithAny`), else ask them to enroll the configuration's
//! `enroll_factor` (default `otp`). Clients listed in the configuration's `skip_clients` are
//! left alone.
//!
//! Enrolled factors (`event.user.enrolledFactors`) arrive in guest ABI version 4.

use claimsmith_sdk::{Api, Event, Factor};

/// Pick the factor to challenge with, or the one to enroll.
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    let skipped = event
        .config("skip_clients")
        .and_then(|v| v.as_array())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.as_str() == Some(&event.client.client_id))
        });
    if skipped {
        return;
    }
    let enrolled = &event.user.enrolled_factors;
    let factor = |kind: &str| {
        // Keep the enrolled factor's options (a phone's preferredMethod).
        let mut factor = Factor::new(kind);
        if let Some(f) = enrolled.iter().find(|f| f.kind == kind) {
            factor.options = f.options.clone();
        }
        factor
    };
    let preferred = event
        .user
        .user_metadata
        .get("preferred_factor")
        .and_then(|v| v.as_str());
    match preferred {
        Some(kind) if event.user.has_enrolled(kind) => {
            let others: Vec<Factor> = enrolled
                .iter()
                .filter(|f| f.kind != kind)
                .map(|f| factor(&f.kind))
                .collect();
            api.authentication()
                .challenge_with_additional(factor(kind), others);
        }
        _ if !enrolled.is_empty() => {
            // Each type once, in enrollment order.
            let mut kinds: Vec<&str> = Vec::new();
            for f in enrolled {
                if !kinds.contains(&f.kind.as_str()) {
                    kinds.push(&f.kind);
                }
            }
            api.authentication()
                .challenge_with_any(kinds.into_iter().map(factor));
        }
        _ => {
            let kind = event.config_str("enroll_factor").unwrap_or("otp");
            api.authentication().enroll_with(kind);
        }
    }
}

claimsmith_sdk::export_rule!(on_execute_post_login, reads = [user, client, configuration]);

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_sdk::{Command, json, testing};

    #[test]
    fn the_preferred_enrolled_factor_first_then_any_then_enrollment() {
        let event = |preferred: &str, factors: serde_json::Value| {
            testing::event(json!({
                "user": {"user_id": "u", "user_metadata": {"preferred_factor": preferred},
                         "enrolledFactors": factors}
            }))
        };
        let phone = json!({"type": "phone", "options": {"preferredMethod": "voice"}});
        let result = testing::run(RULE, &event("phone", json!([{"type": "otp"}, phone])));
        assert_eq!(
            result.commands,
            [Command::ChallengeWith {
                factor: Factor::new("phone").with_option("preferredMethod", "voice"),
                additional_factors: vec![Factor::new("otp")],
            }]
        );
        let any = testing::run(RULE, &event("email", json!([{"type": "otp"}])));
        assert_eq!(
            any.commands,
            [Command::ChallengeWithAny {
                factors: vec![Factor::new("otp")]
            }]
        );
        let none = testing::run(RULE, &event("otp", json!([])));
        assert!(
            matches!(&none.commands[0], Command::EnrollWith { factor, .. } if factor.kind == "otp")
        );
    }
}
