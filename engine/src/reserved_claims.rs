//! Claims a rule may never set or remove: Auth0's reserved list, Cognito's additions and the
//! registered JWT claims. `scope` changes only through `add_scope` / `remove_scope`.

/// Every reserved claim name, sorted.
pub const RESERVED_CLAIMS: &[&str] = &[
    "acr",
    "act",
    "active",
    "amr",
    "at_hash",
    "ath",
    "attest",
    "aud",
    "auth_time",
    "authorization_details",
    "azp",
    "c_hash",
    "client_id",
    "cnf",
    "cognito:username",
    "cty",
    "dest",
    "entitlements",
    "events",
    "exp",
    "groups",
    "gty",
    "htm",
    "htu",
    "iat",
    "identities",
    "internalService",
    "iss",
    "jcard",
    "jku",
    "jti",
    "jwe",
    "jwk",
    "kid",
    "may_act",
    "mky",
    "nbf",
    "nonce",
    "object_id",
    "org_id",
    "org_name",
    "orig",
    "origid",
    "origin_jti",
    "permissions",
    "roles",
    "rph",
    "s_hash",
    "scope",
    "sid",
    "sip_callid",
    "sip_cseq_num",
    "sip_date",
    "sip_from_tag",
    "sip_via_branch",
    "sub",
    "sub_jwk",
    "toe",
    "token_use",
    "txn",
    "typ",
    "uuid",
    "vot",
    "vtm",
    "x5t#S256",
];

/// Whether `name` is reserved.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_CLAIMS.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_so_lookups_find_every_entry() {
        assert!(
            RESERVED_CLAIMS.windows(2).all(|w| w[0] < w[1]),
            "keep RESERVED_CLAIMS sorted"
        );
        for name in RESERVED_CLAIMS {
            assert!(is_reserved(name));
        }
        assert!(!is_reserved("https://example.com/roles"));
    }
}
