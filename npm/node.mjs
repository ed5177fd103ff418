// `import` in Node: the CommonJS build's exports (one shared instance), with `init` as default.
import { init } from "./node.cjs";

export * from "./node.cjs";
export default init;
