import { app } from "./app.js";

export { PairObject } from "./pair-object.js";
export { RegistryObject } from "./registry-object.js";

export default app;
