// The project resolves packages the "node" (node10) way, which ignores package.json "exports";
// vega-lite declares its types only there. vega's own index.d.ts does the same for vega-typings.
declare module "vega-lite" {
  export * from "vega-lite/build/index";
}
