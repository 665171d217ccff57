// The public statistics endpoints, called as any client calls them: the key goes in the
// Authorization header only, never in a URL.

const TIMEOUT_MS = 20000;
// The page asks for ten answers at once, more than a client's query turns (architecture §17):
// a 429 is waited out as Retry-After says, as Gcore's SDK does, a few times at most.
const RETRIES = 2;
const MAX_RETRY_WAIT_MS = 5000;

export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.join("; ") || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function call(url, key) {
  try {
    return await fetch(url, {
      headers: { Authorization: `apikey ${key}` }, cache: "no-store", credentials: "omit",
      signal: AbortSignal.timeout(TIMEOUT_MS), // a hung call must not stop the auto-refresh
    });
  } catch (exc) {
    throw new ApiError(0, [`cannot reach the API (${exc.message})`]);
  }
}

export async function getRows(path, key, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  const url = `/streaming/statistics/${path}?${query}`;
  let response = await call(url, key);
  for (let retry = 0; retry < RETRIES && response.status === 429; retry += 1) {
    const wait = 1000 * (Number(response.headers.get("Retry-After")) || 1);
    await sleep(Math.min(wait, MAX_RETRY_WAIT_MS));
    response = await call(url, key);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok || !body || !Array.isArray(body.data)) {
    const errors = body && Array.isArray(body.errors) ? body.errors.map(String) : [];
    throw new ApiError(response.status, errors);
  }
  return body.data;
}

// What a panel shows instead of an answer it could not get.
export function unavailableText(reason) {
  return reason instanceof ApiError && reason.status === 404
    ? "Not available on this server" : `Could not load: ${reason.message}`;
}
