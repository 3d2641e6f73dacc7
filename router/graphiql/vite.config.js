// Built by router/build.rs into OUT_DIR; the router serves the page at `/` and the rest under `/graphiql/`.
import { defineConfig } from 'vite';

export default defineConfig({
  base: "/graphiql/",
  build: { assetsInlineLimit: 0, chunkSizeWarningLimit: 8000, reportCompressedSize: false },
});
