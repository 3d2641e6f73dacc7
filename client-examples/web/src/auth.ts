// The session. The access token lives in memory only; the refresh token in localStorage, so a reload keeps
// you signed in (an XSS bug could read it: a production app may prefer an httpOnly cookie on its own
// backend). Refresh tokens rotate: each use returns a new one and spends the old, and presenting a spent
// one signs the whole session out. Two refreshes at once (an HTTP retry and a WebSocket reconnect, say)
// would do exactly that, so `refresh()` is single-flight: every caller awaits the one request in flight.
import { stringifyDocument } from '@urql/core';
import { graphql } from './gql';
import type { AuthFieldsFragment } from './gql/graphql';
import { API_URL } from './config';

export const AuthFields = graphql(`
  fragment AuthFields on AuthPayload {
    accessToken
    accessTokenExpiresAt
    refreshToken
    user { id nickname name }
  }
`);

const RefreshDocument = graphql(`
  mutation Refresh($refreshToken: String!) {
    refreshToken(refreshToken: $refreshToken) { ...AuthFields }
  }
`);

const REFRESH_KEY = 'parley.refreshToken';

export interface Session {
  accessToken: string;
  expiresAt: number;
  userId: string;
  nickname: string;
}

let session: Session | null = null;
let inFlight: Promise<Session | null> | null = null;
const listeners = new Set<() => void>();

/** How many refreshes succeeded (shown in the UI for the curious, read by the browser test). */
export let refreshCount = 0;

export function currentSession(): Session | null {
  return session;
}

export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function set(next: Session | null) {
  session = next;
  listeners.forEach((listener) => listener());
}

/** Takes the tokens of `register`, `login` or `refreshToken`. */
export function signIn(payload: AuthFieldsFragment) {
  localStorage.setItem(REFRESH_KEY, payload.refreshToken);
  set({
    accessToken: payload.accessToken,
    expiresAt: Date.parse(payload.accessTokenExpiresAt),
    userId: payload.user.id,
    nickname: payload.user.nickname,
  });
  scheduleRefresh();
}

export function signOut() {
  localStorage.removeItem(REFRESH_KEY);
  clearTimeout(refreshTimer);
  set(null);
}

// The token is renewed a little before it expires (a quarter of its life, at most a minute): live events are
// resolved with the token their socket opened with, so a socket must move to a new token before the old one
// lapses (client.ts replaces it). A laptop asleep past the expiry still gets HTTP 401 and refreshes then.
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
function scheduleRefresh(delay?: number) {
  clearTimeout(refreshTimer);
  if (!session) return;
  const lead = Math.min(60_000, (session.expiresAt - Date.now()) / 4);
  refreshTimer = setTimeout(async () => {
    if ((await refresh()) === null && hasRefreshToken()) scheduleRefresh(5_000); // offline: try again
  }, delay ?? Math.max(1_000, session.expiresAt - Date.now() - lead));
}

export function hasRefreshToken(): boolean {
  return localStorage.getItem(REFRESH_KEY) !== null;
}

/** A new access token for the stored refresh token; `null` (signed out) if the server refuses it. */
export function refresh(): Promise<Session | null> {
  inFlight ??= refreshNow().finally(() => {
    inFlight = null;
  });
  return inFlight;
}

async function refreshNow(): Promise<Session | null> {
  const refreshToken = localStorage.getItem(REFRESH_KEY);
  if (!refreshToken) return null;
  const response = await fetch(API_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: stringifyDocument(RefreshDocument), variables: { refreshToken } }),
  }).catch(() => null);
  if (!response) return null; // offline: try again later with the same refresh token
  const body = await response.json().catch(() => null);
  const payload = body?.data?.refreshToken;
  if (!payload) {
    // A network failure keeps the refresh token for the next try; a refusal ends the session.
    if (response.ok || response.status === 401) signOut();
    return null;
  }
  refreshCount += 1;
  signIn(payload);
  return session;
}

/** The access token, refreshed first when it is about to expire (for WebSocket `connection_init`). */
export async function freshAccessToken(): Promise<string | null> {
  if (session && session.expiresAt - Date.now() > 5_000) return session.accessToken;
  return (await refresh())?.accessToken ?? null;
}
