//! Where the API is: `VITE_PARLEY_URL` at build time, else `parley up`'s router on this machine.
export const API_URL: string = import.meta.env.VITE_PARLEY_URL ?? 'http://127.0.0.1:4000/graphql';
export const WS_URL = API_URL.replace(/^http/, 'ws');
