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

/// The length of the longest reserved name (`authorization_details`). Namespaced claims are
/// longer, so most names a rule sets are settled by their length without a search.
const LONGEST: usize = longest(RESERVED_CLAIMS);

const fn longest(names: &[&str]) -> usize {
    let mut longest = 0;
    let mut i = 0;
    while i < names.len() {
        if names[i].len() > longest {
            longest = names[i].len();
        }
        i += 1;
    }
    longest
}

/// Whether `name` is reserved.
pub fn is_reserved(name: &str) -> bool {
    name.len() <= LONGEST && RESERVED_CLAIMS.binary_search(&name).is_ok()
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

    #[test]
    fn the_length_shortcut_never_hides_a_reserved_name() {
        // Every entry is found by the test above; these are the edges of the shortcut.
        assert!(is_reserved("authorization_details"));
        assert!(!is_reserved("authorization_detailsx"));
        assert!(!is_reserved(""));
    }
}
