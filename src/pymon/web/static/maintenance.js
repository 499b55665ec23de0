// The maintenance page: read the add-window form's times in the browser's time zone.

import { startLive } from "./live.js";

const zone = document.getElementById("window-timezone");
if (zone && zone.value === "UTC") {
  zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}
startLive();
