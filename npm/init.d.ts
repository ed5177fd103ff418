
/**
 * Resolves when the WebAssembly module is ready. Optional: importing the package loads it (in
 * browsers and bundlers with a top-level await, in Node and workerd synchronously), so every
 * export works once the import has resolved. Calling it again returns the same promise.
 */
export function init(): Promise<void>;

export default init;
