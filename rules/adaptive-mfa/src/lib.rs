//! `adaptive-mfa`: step up when the login looks risky (the Auth0 action "adaptive MFA"): when
//! `event.authentication.riskAssessment.confidence` is `low` (or one of the assessments named in
//! the configuration's `assessments` is), challenge the user with a one-time password, offering
//! their other enrolled factors; a user with no factor enrolled is asked to enroll one; with
//! `use_enable_mfa: true` the rule asks for MFA the classic way (`api.multifactor.enable`).
//!
//! The risk assessment and enrolled factors arrive in guest ABI version 4 (`docs/abi.md`).

use claimsmith_sdk::{Api, Event, Factor, MultifactorOptions};

/// Whether the login's risk calls for a challenge.
fn risky(event: &Event) -> bool {
    let Some(risk) = event
        .authentication
        .as_ref()
        .and_then(|a| a.risk_assessment.as_ref())
    else {
        return false;
    };
    if risk.is_low() {
        return true;
    }
    let watched = event
        .config("assessments")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str());
    watched
        .into_iter()
        .any(|name| risk.assessment_confidence(name) == Some("low"))
}

/// Challenge (or enroll) the user when the risk assessment's confidence is low.
pub fn on_execute_post_login(event: &Event, api: &mut Api) {
    if !risky(event) {
        return;
    }
    api.log().info("low confidence in this login: stepping up");
    if event.config("use_enable_mfa").and_then(|v| v.as_bool()) == Some(true) {
        api.multifactor().enable_with(
            "any",
            MultifactorOptions {
                allow_remember_browser: false,
            },
        );
        return;
    }
    if event.user.enrolled_factors.is_empty() {
        api.authentication().enroll_with("otp");
        return;
    }
    let others: Vec<Factor> = event
        .user
        .enrolled_factors
        .iter()
        .filter(|f| f.kind != "otp")
        .map(|f| Factor::new(f.kind.as_str()))
        .collect();
    api.authentication()
        .challenge_with_additional("otp", others);
}

claimsmith_sdk::export_rule!(
    on_execute_post_login,
    reads = [user, authentication, configuration]
);

#[cfg(test)]
mod tests {
    use super::*;
    use claimsmith_sdk::{Command, json, testing};

    fn event(confidence: &str, factors: serde_json::Value) -> Event {
        testing::event(json!({
            "user": {"user_id": "u", "enrolledFactors": factors},
            "authentication": {"methods": [{"name": "pwd"}],
                               "riskAssessment": {"confidence": confidence, "version": "1",
                                   "assessments": {"NewDevice": {"confidence": "low"}}}}
        }))
    }

    #[test]
    fn low_confidence_challenges_with_otp_and_offers_the_other_factors() {
        let result = testing::run(
            RULE,
            &event("low", json!([{"type": "otp"}, {"type": "phone"}])),
        );
        assert!(result.commands.contains(&Command::ChallengeWith {
            factor: Factor::new("otp"),
            additional_factors: vec![Factor::new("phone")],
        }));
        let none = testing::run(RULE, &event("low", json!([])));
        assert!(
            matches!(&none.commands[1], Command::EnrollWith { factor, .. } if factor.kind == "otp")
        );
    }

    #[test]
    fn high_confidence_passes_unless_a_watched_assessment_is_low() {
        let high = event("high", json!([{"type": "otp"}]));
        assert!(testing::run(RULE, &high).commands.is_empty());
        let mut watched = high;
        watched
            .configuration
            .insert("assessments".into(), json!(["NewDevice"]));
        assert_eq!(testing::run(RULE, &watched).commands.len(), 2);
    }
}
