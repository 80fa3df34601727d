//! # claimsmith-server
//!
//! `claimsmith serve`: an HTTP server that an issuer calls at token time (Ory Hydra's token
//! hook, Okta's token inline hook, Supabase Auth's custom access token hook, Zitadel's Actions
//! v2 `preaccesstoken`/`preuserinfo` functions, an AWS Cognito pre token generation trigger via
//! a Lambda shim), runs the claimsmith rules on the login and answers in that issuer's format.
//!
//! - `hook`: the pure translation between each issuer's wire format and the rules engine
//!   (request → login event, outcome → response, fail closed on what a format cannot carry);
//! - `auth`: how each issuer authenticates its calls (API key header or cookie, Standard
//!   Webhooks HMAC, Zitadel's signature header).

#![warn(missing_docs)]

// Until the server module uses them.
#[allow(dead_code)]
mod auth;
#[allow(dead_code)]
mod hook;
