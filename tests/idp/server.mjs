// A real OpenID provider for the portal's single sign-on tests: oidc-provider (certified),
// one instance per "tenant", each at http://127.0.0.1:PORT/<tenant id>/v2.0 (the shape of a
// Microsoft Entra ID tenant's issuer), all signing with one key set as Entra's tenants do.
//
// In front of them, /organizations/v2.0 plays Entra's multi-tenant endpoints: its discovery
// document names the issuer "http://127.0.0.1:PORT/{tenantid}/v2.0", its authorize page asks
// which organisation to sign in with (Entra's account picker), its token endpoint hands the
// code to the tenant that issued it, and its logout sends the browser to that tenant.
//
// The tests' own hooks (never part of a provider): POST /_test/next-token {"mutation": ...}
// changes the next ID token the token endpoints return (re-signed with the provider's own key
// unless the mutation is about the signature; "claims:{...}" merges claims into it) (an attacker between the portal and
// the provider, or a provider gone wrong), and GET /_test/health says it is up.
//
// Configuration: IDP_CONFIG (JSON) {"port": 0, "clients": [...], "tenants": [{"id", "name",
// "accounts": [{"login", "password", "claims": {...}, "amr": [...], "acr": "..."}]}]}.
// Prints one line of JSON when listening: {"port": N}.

import http from "node:http";
import crypto from "node:crypto";
import { Provider } from "oidc-provider";
import * as jose from "jose";

const config = JSON.parse(process.env.IDP_CONFIG || "{}");
const tenants = config.tenants || [];
const clients = config.clients || [];

const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: "test-key-1", alg: "RS256", use: "sig" };
const publicJwk = { kty: signingJwk.kty, n: signingJwk.n, e: signingJwk.e, kid: signingJwk.kid, alg: "RS256", use: "sig" };
const { privateKey: strangerKey } = await jose.generateKeyPair("RS256", { extractable: true });

let nextMutation = null;
const providers = new Map(); // tenant id -> { provider, tenant, callback }

const html = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>${title}</title></head><body><main><h1>${title}</h1>${body}</main></body></html>`;
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString()));
    req.on("error", reject);
  });
}

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", ...headers });
  res.end(body);
}

async function makeProvider(base, tenant) {
  const issuer = `${base}/${tenant.id}/v2.0`;
  const accounts = new Map(tenant.accounts.map((a) => [a.login, a]));
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingJwk] },
    cookies: { keys: [crypto.randomBytes(32).toString("hex")] },
    conformIdTokenClaims: false,
    claims: {
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      openid: ["sub", "tid", "oid", "acr", "amr", "auth_time"],
      email: ["email", "email_verified"],
      profile: ["name", "preferred_username"],
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true },
    },
    pkce: { required: () => true },
    interactions: { url: (ctx, interaction) => `/${tenant.id}/v2.0/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      const account = [...accounts.values()].find((a) => a.claims.sub === id);
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ ...account.claims, tid: tenant.id }) };
    },
    async loadExistingGrant(ctx) {
      // First-party: no consent screen; the grant covers what the portal asks for.
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope("openid email profile");
      await grant.save();
      return grant;
    },
    renderError(ctx, out) {
      ctx.type = "html";
      ctx.body = html("Sign-in error", `<p>${esc(out.error)}: ${esc(out.error_description || "")}</p>`);
    },
  });
  provider.proxy = false;
  const callback = provider.callback();
  providers.set(tenant.id, { provider, tenant, accounts, callback });
}

async function interaction(req, res, entry, uid) {
  const { provider, tenant, accounts } = entry;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, "text/plain", "wrong interaction");
  if (details.prompt.name !== "login") {
    const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    grant.addOIDCScope("openid email profile");
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (req.method === "POST") {
    const form = new URLSearchParams(await readBody(req));
    const account = accounts.get(form.get("login"));
    if (!account || account.password !== form.get("password")) {
      return send(res, 200, "text/html", loginPage(tenant, uid, "Wrong user name or password"));
    }
    const login = { accountId: account.claims.sub, amr: account.amr || ["pwd"] };
    if (account.acr) login.acr = account.acr;
    return provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
  }
  return send(res, 200, "text/html", loginPage(tenant, uid));
}

function loginPage(tenant, uid, error = "") {
  return html(
    `Sign in to ${esc(tenant.name)}`,
    `${error ? `<p role="alert">${esc(error)}</p>` : ""}
<form method="post" action="/${tenant.id}/v2.0/interaction/${uid}">
<p><label for="login">User name</label> <input id="login" name="login" autocomplete="username"></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password"></p>
<p><button type="submit">Sign in</button></p></form>`,
  );
}

async function resign(payload, key = privateKey) {
  return new jose.SignJWT(payload).setProtectedHeader({ alg: "RS256", kid: signingJwk.kid, typ: "JWT" }).sign(key);
}

async function mutate(idToken, mutation) {
  const payload = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  switch (mutation) {
    case "tamper": {
      // The payload changed after signing: the signature no longer matches.
      const [h, , s] = idToken.split(".");
      const changed = Buffer.from(JSON.stringify({ ...payload, sub: "someone-else" })).toString("base64url");
      return `${h}.${changed}.${s}`;
    }
    case "expired":
      return resign({ ...payload, iat: now - 7200, exp: now - 3600 });
    case "wrong-key":
      return resign(payload, strangerKey);
    case "nonce":
      return resign({ ...payload, nonce: "a-nonce-the-portal-never-sent" });
    case "audience":
      return resign({ ...payload, aud: "another-application" });
    case "alg-none": {
      const head = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
      return `${head}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.`;
    }
    default:
      if (mutation && mutation.startsWith("tid:")) return resign({ ...payload, tid: mutation.slice(4) });
      if (mutation && mutation.startsWith("iss:")) return resign({ ...payload, iss: mutation.slice(4) });
      if (mutation && mutation.startsWith("email:")) return resign({ ...payload, email: mutation.slice(6) });
      if (mutation && mutation.startsWith("claims:")) return resign({ ...payload, ...JSON.parse(mutation.slice(7)) });
      return idToken;
  }
}

async function tokenEndpoint(req, res, base, tenantIds) {
  const body = await readBody(req);
  let last = null;
  for (const id of tenantIds) {
    const answer = await fetch(`${base}/${id}/v2.0/token`, {
      method: "POST",
      headers: {
        "content-type": req.headers["content-type"] || "application/x-www-form-urlencoded",
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
        "x-idp-inner": "1",
      },
      body,
    });
    const text = await answer.text();
    last = { status: answer.status, text };
    if (answer.status === 200) break;
  }
  let { status, text } = last;
  if (status === 200 && nextMutation) {
    const json = JSON.parse(text);
    json.id_token = await mutate(json.id_token, nextMutation);
    nextMutation = null;
    text = JSON.stringify(json);
  }
  send(res, status, "application/json", text);
}

let base = "";
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, base);
    const path = url.pathname;
    if (path === "/_test/health") return send(res, 200, "application/json", "{}");
    if (path === "/_test/next-token" && req.method === "POST") {
      nextMutation = JSON.parse(await readBody(req)).mutation || null;
      return send(res, 200, "application/json", "{}");
    }
    if (path.startsWith("/organizations/v2.0")) {
      const rest = path.slice("/organizations/v2.0".length);
      if (rest === "/.well-known/openid-configuration") {
        const common = `${base}/organizations/v2.0`;
        return send(res, 200, "application/json", JSON.stringify({
          issuer: `${base}/{tenantid}/v2.0`,
          authorization_endpoint: `${common}/authorize`,
          token_endpoint: `${common}/token`,
          jwks_uri: `${common}/keys`,
          end_session_endpoint: `${common}/logout`,
          response_types_supported: ["code"],
          subject_types_supported: ["pairwise"],
          id_token_signing_alg_values_supported: ["RS256"],
          code_challenge_methods_supported: ["S256"],
          scopes_supported: ["openid", "email", "profile"],
          token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
        }));
      }
      if (rest === "/keys") return send(res, 200, "application/json", JSON.stringify({ keys: [publicJwk] }));
      if (rest === "/authorize") {
        const choice = url.searchParams.get("tenant");
        if (choice && providers.has(choice)) {
          url.searchParams.delete("tenant");
          return send(res, 302, "text/plain", "", { location: `${base}/${choice}/v2.0/auth?${url.searchParams}` });
        }
        const links = [...providers.values()].map(({ tenant }) => {
          const q = new URLSearchParams(url.searchParams);
          q.set("tenant", tenant.id);
          return `<li><a href="/organizations/v2.0/authorize?${esc(q)}">${esc(tenant.name)}</a></li>`;
        });
        return send(res, 200, "text/html", html("Pick your organisation", `<ul>${links.join("")}</ul>`));
      }
      if (rest === "/token" && req.method === "POST") {
        return tokenEndpoint(req, res, base, [...providers.keys()]);
      }
      if (rest === "/logout") {
        const hint = url.searchParams.get("id_token_hint");
        const iss = hint ? jose.decodeJwt(hint).iss : `${base}/${tenants[0].id}/v2.0`;
        return send(res, 302, "text/plain", "", { location: `${iss}/session/end?${url.searchParams}` });
      }
      return send(res, 404, "text/plain", "not found");
    }
    const match = path.match(/^\/([^/]+)\/v2\.0(\/.*)?$/);
    const entry = match && providers.get(match[1]);
    if (!entry) return send(res, 404, "text/plain", "not found");
    const rest = match[2] || "/";
    const step = rest.match(/^\/interaction\/([^/]+)$/);
    if (step) return await interaction(req, res, entry, step[1]);
    if (rest === "/token" && req.method === "POST" && nextMutation && !req.headers["x-idp-inner"]) {
      // A tenant's own token endpoint (a provider configured by its issuer): mutate here too.
      const body = await readBody(req);
      const answer = await fetch(`${base}${path}`, {
        method: "POST",
        headers: { ...Object.fromEntries(Object.entries(req.headers).filter(([k]) => ["content-type", "authorization"].includes(k))), "x-idp-inner": "1" },
        body,
      });
      let text = await answer.text();
      if (answer.status === 200) {
        const json = JSON.parse(text);
        json.id_token = await mutate(json.id_token, nextMutation);
        nextMutation = null;
        text = JSON.stringify(json);
      }
      return send(res, answer.status, "application/json", text);
    }
    req.originalUrl = req.url;
    req.url = req.url.slice(`/${match[1]}/v2.0`.length) || "/";
    return entry.callback(req, res);
  } catch (error) {
    console.error(error);
    if (!res.headersSent) send(res, 500, "text/plain", "provider error");
  }
});

// The tests hold this process's stdin: when they end, however they end, so does it.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();

server.listen(config.port || 0, "127.0.0.1", async () => {
  const { port } = server.address();
  base = `http://127.0.0.1:${port}`;
  for (const tenant of tenants) await makeProvider(base, tenant);
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
