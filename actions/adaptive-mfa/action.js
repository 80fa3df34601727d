/**
 * Adaptive MFA: step up when the login looks risky. When the risk assessment's confidence is
 * low (or one of the assessments named in the configuration's `assessments` is), challenge the
 * user with a one-time password, offering their other enrolled factors; a user with no factor
 * enrolled is asked to enroll one; with use_enable_mfa the classic api.multifactor.enable. The
 * JavaScript twin of rules/adaptive-mfa, run with its fixtures.
 *
 * @param {Event} event - Details about the user and the context in which they are logging in.
 * @param {PostLoginAPI} api - Interface whose methods can be used to change the behavior of the login.
 */
function list(value) {
  if (Array.isArray(value)) return value;
  return typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : [];
}

exports.onExecutePostLogin = async (event, api) => {
  const risk = event.authentication && event.authentication.riskAssessment;
  if (!risk) {
    return;
  }
  const assessments = risk.assessments || {};
  const risky =
    String(risk.confidence).toLowerCase() === 'low' ||
    list(event.configuration.assessments).some((name) => assessments[name]?.confidence === 'low');
  if (!risky) {
    return;
  }
  console.log('low confidence in this login: stepping up');
  if (event.configuration.use_enable_mfa === true || event.configuration.use_enable_mfa === 'true') {
    api.multifactor.enable('any', { allowRememberBrowser: false });
    return;
  }
  const factors = event.user.enrolledFactors;
  if (factors.length === 0) {
    api.authentication.enrollWith({ type: 'otp' });
    return;
  }
  api.authentication.challengeWith(
    { type: 'otp' },
    { additionalFactors: factors.filter((f) => f.type !== 'otp').map((f) => ({ type: f.type })) },
  );
};
