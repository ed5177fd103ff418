// The documented set-up for the `bundler` package: wasm-bindgen's output imports the `.wasm`
// file as an ES module (WebAssembly ESM integration), which vite-plugin-wasm provides. The
// glue instantiates the module with a top-level await, which every browser in Vite's default
// build target supports, so vite-plugin-top-level-await is not needed.
import { defineConfig } from "vite";
import wasm from "vite-plugin-wasm";

export default defineConfig({
  plugins: [wasm()],
  logLevel: "warn",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Keep the .wasm a separate asset, as an app of any size would get it.
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
});
