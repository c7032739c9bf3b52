#!/usr/bin/env node
// Kindred interop peer: a small, independent ActivityPub server built on
// Fedify (https://fedify.dev), driven over a JSON control API by Kindred's
// integration tests.  See README.md in this directory.
//
// Usage: node peer.mjs --port P        (or PEER_PORT=P; 0 = pick a free port)
// Prints "PEER READY http://localhost:P" on stdout once it serves requests.
// Exits on SIGTERM/SIGINT, and when its stdin (a pipe) is closed.

import http from "node:http";
import fs from "node:fs";
import { randomUUID } from "node:crypto";
import {
  Accept,
  Activity,
  Create,
  Delete,
  Endpoints,
  Follow,
  Mention,
  MemoryKvStore,
  Note,
  Person,
  PUBLIC_COLLECTION,
  Tombstone,
  Undo,
  Update,
  createFederation,
  generateCryptoKeyPair,
  getDocumentLoader,
  isActor,
  parseSemVer,
} from "@fedify/fedify";
import { Temporal } from "@js-temporal/polyfill";

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const opts = { port: process.env.PEER_PORT ?? null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port" || a === "-p") opts.port = argv[++i];
    else if (a.startsWith("--port=")) opts.port = a.slice("--port=".length);
    else if (a === "--help" || a === "-h") {
      process.stdout.write(
        "usage: node peer.mjs --port P   (env PEER_PORT; 0 = any free port)\n",
      );
      process.exit(0);
    } else {
      process.stderr.write(`peer: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (opts.port == null || !/^\d+$/.test(String(opts.port))) {
    process.stderr.write("peer: --port P (or PEER_PORT) is required\n");
    process.exit(2);
  }
  opts.port = Number(opts.port);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const DEBUG = !!process.env.PEER_DEBUG && process.env.PEER_DEBUG !== "0";

function log(...args) {
  if (DEBUG) process.stderr.write(`[peer] ${args.join(" ")}\n`);
}

// ---------------------------------------------------------------- lifetime

function shutdown(code = 0) {
  try {
    server?.close();
  } catch { /* ignore */ }
  process.exit(code);
}
process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));

// Exit when the parent closes our stdin.  Only watch stdin when it is a pipe
// or socket (somebody holds the other end); /dev/null or a terminal would
// end at once / never, so those are left alone.  PEER_IGNORE_STDIN=1 opts out.
(() => {
  if (process.env.PEER_IGNORE_STDIN === "1") return;
  let st;
  try {
    st = fs.fstatSync(0);
  } catch {
    return;
  }
  if (!(st.isFIFO() || st.isSocket())) return;
  process.stdin.on("data", () => {});
  process.stdin.on("end", () => shutdown(0));
  process.stdin.on("close", () => shutdown(0));
  process.stdin.on("error", () => shutdown(0));
  process.stdin.resume();
})();

// ---------------------------------------------------------------- state

const USER = "alice";
/** Activities that reached an inbox listener (i.e. passed verification). */
let received = [];
/** Inbox POSTs that Fedify answered with an error status. */
let rejected = [];
/** Outgoing POSTs made by Fedify (inbox deliveries), with the exact headers. */
let sent = [];
/** Notes alice wrote: id -> { note, recipients, deleted } */
const notes = new Map();
/** Activities alice sent, served at /activities/{id}: id -> Activity */
const activities = new Map();
/** Follows alice sent: target actor id -> Follow */
const follows = new Map();
/** Remote actors that follow alice: actor id -> Actor */
const followers = new Map();

// Record every outgoing POST (Fedify calls the global fetch at call time).
const originalFetch = globalThis.fetch;
globalThis.fetch = async function recordingFetch(input, init) {
  const request = new Request(input, init);
  if (request.method !== "POST") {
    log("fetch", request.method, request.url);
    return await originalFetch(request);
  }
  const bodyText = await request.clone().text();
  const entry = {
    method: request.method,
    url: request.url,
    headers: Object.fromEntries(request.headers),
    body: tryJson(bodyText),
    status: null,
    response: null,
  };
  sent.push(entry);
  try {
    const response = await originalFetch(request);
    entry.status = response.status;
    try {
      entry.response = await response.clone().text();
    } catch { /* ignore */ }
    log("POST", request.url, "->", response.status);
    return response;
  } catch (e) {
    entry.response = `fetch failed: ${e?.cause?.message ?? e?.message ?? e}`;
    throw e;
  }
};

function tryJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// ---------------------------------------------------------------- federation

let server = null;
let origin = null; // "http://localhost:P", known once listening
let federation = null;

const rsaKeyPair = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");

function typeName(value) {
  if (value == null) return null;
  if (typeof value === "string") return null; // a bare URL, not embedded
  const t = value.type ?? value["@type"];
  if (Array.isArray(t)) return t.map(String).join(",");
  return t == null ? null : String(t);
}

function buildFederation() {
  const fed = createFederation({
    kv: new MemoryKvStore(),
    origin,
    allowPrivateAddress: true,
    // No 5-minute cache of remote documents (Fedify's default): a test must
    // see Kindred's current state on every lookup.  Well-known JSON-LD
    // contexts are still preloaded, never fetched.
    documentLoaderFactory: () => getDocumentLoader({ allowPrivateAddress: true }),
    // Signature verification stays ON (skipSignatureVerification not set).
  });

  fed
    .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
      if (identifier !== USER) return null;
      const keys = await ctx.getActorKeyPairs(identifier);
      return new Person({
        id: ctx.getActorUri(identifier),
        preferredUsername: identifier,
        name: "Alice (Fedify peer)",
        summary: "<p>Test actor of Kindred's Fedify interop peer.</p>",
        url: ctx.getActorUri(identifier),
        inbox: ctx.getInboxUri(identifier),
        outbox: ctx.getOutboxUri(identifier),
        endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
        followers: ctx.getFollowersUri(identifier),
        manuallyApprovesFollowers: false,
        discoverable: true,
        publicKey: keys[0].cryptographicKey,
        assertionMethods: keys.map((k) => k.multikey),
      });
    })
    .setKeyPairsDispatcher((_ctx, identifier) =>
      identifier === USER ? [rsaKeyPair] : []
    );

  fed
    .setFollowersDispatcher(
      "/users/{identifier}/followers",
      (_ctx, identifier) => {
        if (identifier !== USER) return null;
        return { items: [...followers.values()] };
      },
    )
    .setCounter((_ctx, identifier) =>
      identifier === USER ? followers.size : null
    );

  fed
    .setOutboxDispatcher("/users/{identifier}/outbox", (_ctx, identifier) => {
      if (identifier !== USER) return null;
      return { items: [] };
    })
    .setCounter((_ctx, identifier) => (identifier === USER ? 0 : null));

  fed.setObjectDispatcher(Note, "/notes/{id}", (_ctx, { id }) => {
    const entry = notes.get(id);
    if (entry == null || entry.deleted) return null;
    return entry.note;
  });

  fed.setObjectDispatcher(
    Activity,
    "/activities/{id}",
    (_ctx, { id }) => activities.get(id) ?? null,
  );

  fed.setNodeInfoDispatcher("/nodeinfo/2.1", () => ({
    software: {
      name: "kindred-interop-peer",
      version: parseSemVer("0.1.0"),
    },
    protocols: ["activitypub"],
    usage: {
      users: { total: 1, activeHalfyear: 1, activeMonth: 1 },
      localPosts: notes.size,
      localComments: 0,
    },
  }));

  fed
    .setInboxListeners("/users/{identifier}/inbox", "/inbox")
    .on(Activity, async (ctx, activity) => {
      const json = await activity.toJsonLd({ format: "compact" });
      const raw = ctx.data?.rawBody ?? null;
      const rawObject = raw && typeof raw === "object" ? raw.object : undefined;
      let objectType;
      if (rawObject !== undefined) objectType = typeName(rawObject);
      else objectType = typeName(json?.object);
      const record = {
        type: typeName(raw) ?? typeName(json) ?? activity.constructor.name,
        id: activity.id?.href ?? null,
        actor: activity.actorId?.href ?? null,
        objectId: activity.objectId?.href ?? null,
        objectType,
        verified: true,
        inbox: ctx.data?.path ?? null,
        signature: ctx.data?.signature ?? null,
        receivedAt: new Date().toISOString(),
        json,
        raw,
      };
      received.push(record);
      log("received", record.type, record.id, "from", record.actor);

      // Be a polite peer: accept anyone who follows alice.
      if (activity instanceof Follow && activity.objectId?.href ===
          ctx.getActorUri(USER).href) {
        try {
          const follower = await activity.getActor();
          if (isActor(follower) && follower.id != null) {
            followers.set(follower.id.href, follower);
            await ctx.sendActivity(
              { identifier: USER },
              follower,
              new Accept({
                id: newActivityUri(ctx),
                actor: ctx.getActorUri(USER),
                // Echo the Follow as received (ids only).
                object: new Follow({
                  id: activity.id,
                  actor: activity.actorId,
                  object: activity.objectId,
                }),
              }),
            );
          }
        } catch (e) {
          log("could not accept follow:", String(e));
        }
      } else if (activity instanceof Undo && activity.actorId != null) {
        const inner = await activity.getObject().catch(() => null);
        if (inner instanceof Follow) followers.delete(activity.actorId.href);
      }
    })
    .onError((_ctx, error) => {
      log("inbox listener error:", String(error?.stack ?? error));
    });

  return fed;
}

// ---------------------------------------------------------------- helpers

function newActivityUri(ctx) {
  return ctx.getObjectUri(Activity, { id: randomUUID() });
}

/** Creates an activity and remembers it so /activities/{id} serves it. */
function remember(activity) {
  const m = activity.id.pathname.match(/^\/activities\/([^/]+)$/);
  if (m) activities.set(m[1], activity);
  return activity;
}

class HttpError extends Error {
  constructor(status, message, extra = {}) {
    super(message);
    this.status = status;
    this.extra = extra;
  }
}

function sendError(e) {
  // Fedify throws: "Failed to send activity X to Y (400 Bad Request):\nbody"
  const msg = String(e?.message ?? e);
  const m = msg.match(/^Failed to send activity .* to (\S+) \((\d{3})[^)]*\):\n?([\s\S]*)$/);
  if (m) {
    return new HttpError(502, msg, {
      inbox: m[1],
      remoteStatus: Number(m[2]),
      remoteBody: m[3],
    });
  }
  const cause = e?.cause?.message ?? e?.cause?.code;
  return new HttpError(502, cause ? `${msg} (${cause})` : msg);
}

async function send(ctx, recipients, activity, options = {}) {
  try {
    await ctx.sendActivity({ identifier: USER }, recipients, activity, options);
  } catch (e) {
    throw sendError(e);
  }
}

async function lookupActor(ctx, actorUrl) {
  if (typeof actorUrl !== "string" || actorUrl === "") {
    throw new HttpError(400, "actor URL required");
  }
  let url;
  try {
    url = new URL(actorUrl);
  } catch {
    throw new HttpError(400, `not a URL: ${actorUrl}`);
  }
  let obj;
  try {
    obj = await ctx.lookupObject(url);
  } catch (e) {
    throw new HttpError(502, `lookup of ${url.href} failed: ${e?.message ?? e}`);
  }
  if (obj == null) throw new HttpError(404, `actor not found: ${url.href}`);
  if (!isActor(obj)) {
    throw new HttpError(400, `${url.href} is not an actor (${obj.constructor.name})`);
  }
  return obj;
}

function handleOf(actor) {
  const host = actor.id ? actor.id.host : "";
  return `@${actor.preferredUsername ?? "unknown"}@${host}`;
}

async function readJsonBody(req) {
  const text = await req.text();
  if (text.trim() === "") return {};
  try {
    const v = JSON.parse(text);
    if (v == null || typeof v !== "object") throw new Error("not an object");
    return v;
  } catch (e) {
    throw new HttpError(400, `invalid JSON body: ${e.message}`);
  }
}

function json(status, value) {
  return new Response(JSON.stringify(value, null, 2), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8" },
  });
}

function requireString(body, key) {
  const v = body[key];
  if (typeof v !== "string" || v === "") {
    throw new HttpError(400, `"${key}" (string) is required`);
  }
  return v;
}

function noteIdFrom(value) {
  // Accept the bare id or the full note URL.
  const s = String(value ?? "");
  const m = s.match(/\/notes\/([^/?#]+)$/);
  return m ? m[1] : s;
}

// ---------------------------------------------------------------- control API

async function control(request, ctx, path) {
  const method = request.method;
  const q = new URL(request.url).searchParams;

  if (method === "GET" && path === "/control/received") {
    return json(200, received);
  }
  if (method === "GET" && path === "/control/rejected") {
    return json(200, rejected);
  }
  if (method === "GET" && path === "/control/sent") {
    return json(200, sent);
  }
  if (method === "GET" && path === "/control/stats") {
    return json(200, {
      received: received.length,
      rejected: rejected.length,
      sent: sent.length,
      notes: notes.size,
    });
  }
  if (method === "POST" && path === "/control/reset") {
    received = [];
    rejected = [];
    sent = [];
    return json(200, { ok: true });
  }

  if (method === "GET" && path === "/control/lookup") {
    let handle = q.get("handle");
    if (!handle) throw new HttpError(400, "handle query parameter required");
    handle = handle.replace(/^acct:/, "").replace(/^@/, "");
    const at = handle.lastIndexOf("@");
    if (at <= 0 || at === handle.length - 1) {
      throw new HttpError(400, `not a handle: ${handle}`);
    }
    const host = handle.slice(at + 1);
    const resource = `acct:${handle}`;
    // Fedify always builds https:// WebFinger URLs for acct: resources, and
    // Kindred runs on plain http in tests, so do the WebFinger GET here.
    const wfUrl = `http://${host}/.well-known/webfinger?resource=${
      encodeURIComponent(resource)
    }`;
    let wfRes;
    try {
      wfRes = await originalFetch(wfUrl, {
        headers: { Accept: "application/jrd+json, application/json" },
      });
    } catch (e) {
      throw new HttpError(502, `WebFinger ${wfUrl} failed: ${e?.cause?.message ?? e}`);
    }
    const wfText = await wfRes.text();
    if (wfRes.status === 404) {
      return json(404, { error: `WebFinger: ${resource} not found`, body: wfText });
    }
    if (!wfRes.ok) {
      throw new HttpError(502, `WebFinger ${wfUrl} answered ${wfRes.status}`, {
        remoteStatus: wfRes.status,
        remoteBody: wfText,
      });
    }
    const webfinger = tryJson(wfText);
    const links = Array.isArray(webfinger?.links) ? webfinger.links : [];
    const self = links.find((l) =>
      l?.rel === "self" && typeof l.href === "string" &&
      (l.type === "application/activity+json" ||
        /^application\/ld\+json/.test(l.type ?? ""))
    );
    if (self == null) {
      throw new HttpError(502, "WebFinger answer has no ActivityPub self link", {
        webfinger,
      });
    }
    const actor = await lookupActor(ctx, self.href);
    const actorJson = await actor.toJsonLd({ format: "compact" });
    return json(200, {
      id: actor.id?.href ?? null,
      type: typeName(actorJson) ?? actor.constructor.name,
      preferredUsername: actor.preferredUsername?.toString() ?? null,
      name: actor.name?.toString() ?? null,
      summary: actor.summary?.toString() ?? null,
      inbox: actor.inboxId?.href ?? null,
      sharedInbox: actor.endpoints?.sharedInbox?.href ?? null,
      followers: actor.followersId?.href ?? null,
      webfinger,
      json: actorJson,
    });
  }

  if (method === "POST" && path === "/control/follow") {
    const body = await readJsonBody(request);
    const target = await lookupActor(ctx, requireString(body, "actor"));
    const follow = remember(
      new Follow({
        id: newActivityUri(ctx),
        actor: ctx.getActorUri(USER),
        object: target.id,
        to: target.id,
      }),
    );
    follows.set(target.id.href, follow);
    await send(ctx, target, follow);
    return json(200, { id: follow.id.href });
  }

  if (method === "POST" && path === "/control/unfollow") {
    const body = await readJsonBody(request);
    const target = await lookupActor(ctx, requireString(body, "actor"));
    const follow = follows.get(target.id.href);
    if (follow == null) {
      throw new HttpError(404, `alice has not followed ${target.id.href}`);
    }
    const undo = remember(
      new Undo({
        id: newActivityUri(ctx),
        actor: ctx.getActorUri(USER),
        object: follow,
        to: target.id,
      }),
    );
    await send(ctx, target, undo);
    follows.delete(target.id.href);
    return json(200, { id: undo.id.href, follow: follow.id.href });
  }

  if (method === "POST" && path === "/control/post") {
    const body = await readJsonBody(request);
    const group = await lookupActor(ctx, requireString(body, "group"));
    const content = requireString(body, "content");
    const summary = typeof body.summary === "string" && body.summary !== ""
      ? body.summary
      : null;
    const mentionName = typeof body.mentionName === "string" && body.mentionName
      ? body.mentionName
      : handleOf(group);
    const id = randomUUID();
    const noteUri = ctx.getObjectUri(Note, { id });
    const published = Temporal.Now.instant();
    const note = new Note({
      id: noteUri,
      url: noteUri,
      attribution: ctx.getActorUri(USER),
      to: PUBLIC_COLLECTION,
      ccs: [group.id, ctx.getFollowersUri(USER)],
      // Lemmy-style FEP-1b12 `audience` only when asked for.
      audience: body.audience ? group.id : null,
      content,
      summary,
      sensitive: summary != null ? true : null,
      published,
      tags: [new Mention({ href: group.id, name: mentionName })],
    });
    const create = remember(
      new Create({
        id: newActivityUri(ctx),
        actor: ctx.getActorUri(USER),
        object: note,
        to: PUBLIC_COLLECTION,
        ccs: [group.id, ctx.getFollowersUri(USER)],
        audience: body.audience ? group.id : null,
        published,
      }),
    );
    notes.set(id, { note, recipients: [group], deleted: false });
    await send(ctx, group, create, { preferSharedInbox: true });
    return json(200, { note: noteUri.href, create: create.id.href });
  }

  if (method === "POST" && path === "/control/reply") {
    const body = await readJsonBody(request);
    const inReplyTo = new URL(requireString(body, "inReplyTo"));
    const content = requireString(body, "content");
    const to = Array.isArray(body.to) ? body.to : [];
    if (to.length === 0) throw new HttpError(400, `"to" (array of actor URLs) is required`);
    const actors = [];
    for (const a of to) actors.push(await lookupActor(ctx, a));
    const id = randomUUID();
    const noteUri = ctx.getObjectUri(Note, { id });
    const published = Temporal.Now.instant();
    const audience = typeof body.audience === "string" ? new URL(body.audience) : null;
    const note = new Note({
      id: noteUri,
      url: noteUri,
      attribution: ctx.getActorUri(USER),
      replyTarget: inReplyTo,
      to: PUBLIC_COLLECTION,
      ccs: [...actors.map((a) => a.id), ctx.getFollowersUri(USER)],
      audience,
      content,
      published,
      tags: actors.map((a) => new Mention({ href: a.id, name: handleOf(a) })),
    });
    const create = remember(
      new Create({
        id: newActivityUri(ctx),
        actor: ctx.getActorUri(USER),
        object: note,
        to: PUBLIC_COLLECTION,
        ccs: [...actors.map((a) => a.id), ctx.getFollowersUri(USER)],
        audience,
        published,
      }),
    );
    notes.set(id, { note, recipients: actors, deleted: false });
    await send(ctx, actors, create, { preferSharedInbox: true });
    return json(200, { note: noteUri.href, create: create.id.href });
  }

  if (method === "POST" && path === "/control/update") {
    const body = await readJsonBody(request);
    const id = noteIdFrom(requireString(body, "note"));
    const entry = notes.get(id);
    if (entry == null || entry.deleted) throw new HttpError(404, `no note ${id}`);
    const content = requireString(body, "content");
    const now = Temporal.Now.instant();
    const changes = { content, updated: now };
    if (typeof body.summary === "string") {
      changes.summary = body.summary === "" ? null : body.summary;
      changes.sensitive = body.summary === "" ? null : true;
    }
    entry.note = entry.note.clone(changes);
    const update = remember(
      new Update({
        id: newActivityUri(ctx),
        actor: ctx.getActorUri(USER),
        object: entry.note,
        tos: entry.note.toIds,
        ccs: entry.note.ccIds,
        audience: entry.note.audienceId,
        published: now,
      }),
    );
    await send(ctx, entry.recipients, update, { preferSharedInbox: true });
    return json(200, { note: entry.note.id.href, update: update.id.href });
  }

  if (method === "POST" && path === "/control/delete") {
    const body = await readJsonBody(request);
    const id = noteIdFrom(requireString(body, "note"));
    const entry = notes.get(id);
    if (entry == null || entry.deleted) throw new HttpError(404, `no note ${id}`);
    entry.deleted = true;
    const now = Temporal.Now.instant();
    const del = remember(
      new Delete({
        id: newActivityUri(ctx),
        actor: ctx.getActorUri(USER),
        object: new Tombstone({ id: entry.note.id, deleted: now }),
        tos: entry.note.toIds,
        ccs: entry.note.ccIds,
        audience: entry.note.audienceId,
        published: now,
      }),
    );
    await send(ctx, entry.recipients, del, { preferSharedInbox: true });
    return json(200, { note: entry.note.id.href, delete: del.id.href });
  }

  return json(404, { error: `no control endpoint ${method} ${path}` });
}

// ---------------------------------------------------------------- HTTP glue

async function toFetchRequest(req, body) {
  const url = new URL(req.url, origin);
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const init = { method: req.method, headers };
  if (req.method !== "GET" && req.method !== "HEAD") init.body = body;
  return new Request(url, init);
}

function readNodeBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function writeNodeResponse(res, response, method) {
  const headers = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const buf = Buffer.from(await response.arrayBuffer());
  res.writeHead(response.status, headers);
  res.end(method === "HEAD" ? undefined : buf);
}

const INBOX_PATH = /^\/(inbox|users\/[^/]+\/inbox)\/?$/;

async function handle(req, res) {
  const body = await readNodeBody(req);
  const request = await toFetchRequest(req, body);
  const path = new URL(request.url).pathname;
  let response;
  try {
    if (path.startsWith("/control/")) {
      const ctx = federation.createContext(request, {});
      try {
        response = await control(request, ctx, path);
      } catch (e) {
        if (e instanceof HttpError) {
          response = json(e.status, { error: e.message, ...e.extra });
        } else {
          log("control error:", String(e?.stack ?? e));
          response = json(500, { error: String(e?.message ?? e) });
        }
      }
    } else {
      const m = path.match(/^\/notes\/([^/]+)$/);
      if (m && notes.get(m[1])?.deleted) {
        const entry = notes.get(m[1]);
        response = new Response(
          JSON.stringify({
            "@context": "https://www.w3.org/ns/activitystreams",
            id: entry.note.id.href,
            type: "Tombstone",
          }),
          { status: 410, headers: { "Content-Type": "application/activity+json" } },
        );
      } else {
        const isInboxPost = req.method === "POST" && INBOX_PATH.test(path);
        const contextData = {
          path,
          rawBody: isInboxPost ? tryJson(body.toString("utf8")) : null,
          signature: request.headers.get("signature"),
        };
        response = await federation.fetch(request, { contextData });
        if (isInboxPost) {
          log("inbox", path, "->", response.status);
          if (response.status >= 400) {
            const text = await response.clone().text();
            rejected.push({
              path,
              status: response.status,
              response: text,
              headers: Object.fromEntries(request.headers),
              body: contextData.rawBody,
              at: new Date().toISOString(),
            });
          }
        }
      }
    }
  } catch (e) {
    log("handler error:", String(e?.stack ?? e));
    response = json(500, { error: String(e?.message ?? e) });
  }
  await writeNodeResponse(res, response, req.method);
}

server = http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    log("fatal handler error:", String(e?.stack ?? e));
    try {
      res.writeHead(500, { "Content-Type": "text/plain" });
      res.end("internal error");
    } catch { /* ignore */ }
  });
});

server.on("error", (e) => {
  process.stderr.write(`peer: ${e.message}\n`);
  process.exit(1);
});

// Loopback only.  "localhost" may resolve to ::1 first for some clients, so
// also listen on [::1] with the same port when the host has IPv6 loopback.
server.listen(opts.port, "127.0.0.1", () => {
  const port = server.address().port;
  origin = `http://localhost:${port}`;
  federation = buildFederation();
  const v6 = http.createServer(server.listeners("request")[0]);
  v6.on("error", () => {
    /* no IPv6 loopback (or port taken there): IPv4 is enough */
  });
  v6.listen(port, "::1", () => {});
  v6.unref();
  process.stdout.write(`PEER READY ${origin}\n`);
});
