import { DurableObject } from "cloudflare:workers";
export class PairObject extends DurableObject {}
