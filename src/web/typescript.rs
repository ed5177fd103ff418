//! Hand-written TypeScript types for the published API (pulled into the generated `.d.ts`).
