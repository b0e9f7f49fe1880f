// A real OpenID provider for the lab: the certified npm package `oidc-provider` (panva),
// started by tests/lab/oidc.py with node. Everything comes from the environment:
//   OIDC_PROVIDER_DIR  the folder oidc-provider is installed in (node_modules/oidc-provider)
//   OIDC_PORT          where to listen (127.0.0.1); the issuer is http://127.0.0.1:PORT
//   OIDC_CLIENT        JSON {client_id, client_secret, redirect_uri}: one confidential client,
//                      authorization code only, PKCE (S256) required
//   OIDC_ACCOUNTS      JSON {login: {name, email, groups: [...]}}: who may sign in
// The sign-in is a small form of our own (devInteractions off): the login name only, no
// password (a lab), an unknown name is answered with the form again; consent is implied for
// the one first-party client. Prints "listening <issuer>" when ready.
import crypto from "node:crypto";
import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.env.OIDC_PROVIDER_DIR;
const port = Number(process.env.OIDC_PORT);
const client = JSON.parse(process.env.OIDC_CLIENT);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS);
const issuer = `http://127.0.0.1:${port}`;

const { default: Provider } = await import(
  pathToFileURL(path.join(dir, "node_modules", "oidc-provider", "lib", "index.js")).href);

const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "lab-rs256", use: "sig", alg: "RS256" };

const provider = new Provider(issuer, {
  clients: [{
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: [client.redirect_uri],
    response_types: ["code"],
    grant_types: ["authorization_code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  pkce: { required: () => true, methods: ["S256"] },
  features: { devInteractions: { enabled: false } },
  scopes: ["openid", "profile", "email", "groups"],
  claims: { openid: ["sub"], profile: ["name"], email: ["email"], groups: ["groups"] },
  conformIdTokenClaims: false,   // the scopes' claims in the ID token, as Keycloak/Entra do
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString("hex")] },
  findAccount: async (ctx, id) => accounts[id] === undefined ? undefined : {
    accountId: id,
    claims: async () => ({ sub: id, ...accounts[id] }),
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // consent is implied for the first-party client: a grant of what it asked for
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId ||
      ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(ctx.oidc.params.scope || "openid");
    await grant.save();
    return grant;
  },
});

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function form(res, uid, error) {
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Lab IdP sign-in</title>
<style>body{font-family:sans-serif;max-width:24rem;margin:4rem auto}input,button{font-size:1rem;padding:.4rem}</style>
</head><body><h1>Lab identity provider</h1>
${error ? `<p id="error" role="alert">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="login">User name</label> <input id="login" name="login" autocomplete="username" required>
<button id="submit" type="submit">Sign in</button></form></body></html>`);
}

async function body(req) {
  let text = "";
  for await (const chunk of req) text += chunk;
  return new URLSearchParams(text);
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(req.url.split("?")[0]);
  if (!match) return callback(req, res);
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== match[1]) throw new Error("interaction mismatch");
    if (req.method === "GET" && !match[2]) return form(res, details.uid);
    if (req.method === "POST" && match[2]) {
      const login = (await body(req)).get("login") || "";
      if (accounts[login] === undefined) return form(res, details.uid, `No user ${login}`);
      return await provider.interactionFinished(req, res, { login: { accountId: login } },
                                                { mergeWithLastSubmission: false });
    }
    res.writeHead(405).end();
  } catch (err) {
    res.writeHead(400, { "Content-Type": "text/plain" }).end(`interaction failed: ${err.message}`);
  }
});
server.listen(port, "127.0.0.1", () => console.log(`listening ${issuer}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
