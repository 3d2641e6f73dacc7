import { defineConfig } from 'vite';

// The API is `VITE_PARLEY_URL` (default http://127.0.0.1:4000/graphql, `parley up`'s router); the router's CORS
// allows the dev server's origin, http://localhost:5173.
export default defineConfig({
  server: { port: 5173, strictPort: true },
  build: { sourcemap: false },
});
