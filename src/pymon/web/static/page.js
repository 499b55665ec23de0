// Pages without their own module: the live indicator, counts and event rows.
import { startLive } from "./live.js";

startLive();
