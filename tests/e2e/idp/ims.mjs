// A real OpenID Connect provider on 127.0.0.1 standing in for Bentley IMS in end-to-end tests.
// PORT: port to listen on; CLIENTS: JSON list of {client_id, client_secret, redirect_uris}.
// Users sign in through the provider's development login form with any user name; their email is <name>@example.com.
// Access tokens are JWTs (audience https://api.bentley.com) carrying the email, as IMS tokens carry the user.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.CLIENTS).map((c) => ({
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_post',
  ...c,
}));
const API = 'https://api.bentley.com';

const provider = new Provider(issuer, {
  clients,
  pkce: { required: () => true, methods: ['S256'] },
  scopes: ['openid', 'email', 'profile', 'offline_access', 'itwin-platform'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@example.com`, email_verified: true }),
  }),
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => API,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'itwin-platform', accessTokenFormat: 'jwt', accessTokenTTL: 3600 }),
    },
  },
  extraTokenClaims: async (ctx, token) => (token.accountId ? { email: `${token.accountId}@example.com` } : {}),
  issueRefreshToken: async () => true,
  loadExistingGrant: async (ctx) => {
    // Consent is implied: a test user always grants what the registered client asks for.
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile offline_access');
    grant.addResourceScope(API, 'itwin-platform');
    await grant.save();
    return grant;
  },
  ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
  cookies: { keys: ['itwin-insights-mcp-test'] },
});
provider.proxy = false;
provider.listen(port, '127.0.0.1', () => console.log(`IdP listening on ${issuer}`));
