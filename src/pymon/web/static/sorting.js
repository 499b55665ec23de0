// Sorting a server-rendered table in place: a click on a header's sort link sorts the
// rows by that column's data-value (numbers as numbers, empty cells last), a second
// click reverses it, and the address keeps ?sort= so a reload shows the same order.
// Without JavaScript the same links ask the server for the sorted page, and so do
// they when the table is one page of several (only the server sees every row).

function cellValue(row, col) {
  const cell = row.querySelector(`td[data-col="${col}"]`);
  const text = cell?.dataset.value ?? "";
  if (text === "") return null;
  const number = Number(text);
  return Number.isNaN(number) ? text.toLowerCase() : number;
}

function sortBy(table, col, desc) {
  const tbody = table.tBodies[0];
  const rows = [...tbody.rows].filter((r) => !r.classList.contains("empty"));
  const keyed = rows.map((row) => ({ row, key: cellValue(row, col), name: cellValue(row, "service") ?? "" }));
  keyed.sort((a, b) => {
    if (a.key === null || b.key === null) return (a.key === null) - (b.key === null);
    if (a.key < b.key) return desc ? 1 : -1;
    if (a.key > b.key) return desc ? -1 : 1;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  tbody.append(...keyed.map((k) => k.row));
  for (const th of table.tHead.querySelectorAll("th[data-sort]")) {
    if (th.dataset.sort === col) th.setAttribute("aria-sort", desc ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
  }
  table.dataset.sort = (desc ? "-" : "") + col;
  const params = new URLSearchParams(location.search);
  params.set("sort", table.dataset.sort);
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

for (const table of document.querySelectorAll("table.report[data-sort][data-complete]")) {
  for (const th of table.tHead.querySelectorAll("th[data-sort]")) {
    th.querySelector("a")?.addEventListener("click", (event) => {
      event.preventDefault();
      const current = table.dataset.sort;
      const col = th.dataset.sort;
      sortBy(table, col, current === col);
    });
  }
}
