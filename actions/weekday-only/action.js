/**
 * Allow access only on weekdays: deny logins on Saturdays and Sundays, in UTC or at the UTC
 * offset the configuration names. The JavaScript twin of rules/weekday-only, run with its
 * fixtures.
 *
 * Configuration: utc_offset_minutes (default 0), reason (the denial's text).
 *
 * @param {Event} event - Details about the user and the context in which they are logging in.
 * @param {PostLoginAPI} api - Interface whose methods can be used to change the behavior of the login.
 */
exports.onExecutePostLogin = async (event, api) => {
  const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  const offset = Math.max(-1080, Math.min(1080, Math.trunc(Number(event.configuration.utc_offset_minutes) || 0)));
  // Shift the instant by the offset and read the day in UTC: the day at that offset.
  const local = new Date(Date.now() + offset * 60 * 1000);
  const day = local.getUTCDay();
  if (day === 0 || day === 6) {
    console.log(`login on a ${DAYS[day]}: denied`);
    api.access.deny(event.configuration.reason || 'Logins are allowed on weekdays only.');
  }
};
