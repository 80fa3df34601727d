/**
 * Session timeouts from metadata: end the session a set time after the login, end it when idle,
 * and refuse a login whose session is older than allowed. The JavaScript twin of
 * rules/session-timeout, run with its fixtures.
 *
 * Hours come from app_metadata.session_timeout_hours / idle_timeout_hours (per user), else the
 * configuration's; max_session_age_hours (configuration) denies a login in an older session.
 *
 * @param {Event} event - Details about the user and the context in which they are logging in.
 * @param {PostLoginAPI} api - Interface whose methods can be used to change the behavior of the login.
 */
const HOUR_MS = 60 * 60 * 1000;

function hours(event, key) {
  const value = key in event.user.app_metadata ? event.user.app_metadata[key] : event.configuration[key];
  const h = Number(value);
  return Number.isFinite(h) && h > 0 ? h : undefined;
}

exports.onExecutePostLogin = async (event, api) => {
  const now = Date.now();
  const max = hours(event, 'max_session_age_hours');
  const created = event.session && event.session.created_at;
  if (max !== undefined && created) {
    const age = now - new Date(created).getTime();
    if (age > max * HOUR_MS) {
      api.access.deny('Your session is too old: please sign in again.');
      return;
    }
  }
  const timeout = hours(event, 'session_timeout_hours');
  if (timeout !== undefined) {
    api.session.setExpiresAt(now + timeout * HOUR_MS);
  }
  const idle = hours(event, 'idle_timeout_hours');
  if (idle !== undefined) {
    api.session.setIdleExpiresAt(now + idle * HOUR_MS);
  }
};
