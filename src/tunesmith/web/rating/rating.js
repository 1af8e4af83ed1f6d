// The blind rating page: fetch the next item, collect the rating from the mouse or the
// keyboard, send it the moment it is complete (so closing the page loses nothing given).
"use strict";
(function () {
  const base = location.pathname.replace(/\/+$/, "");
  const mode = document.body.dataset.mode;
  const wantsChoice = mode === "pairwise" || mode === "both";
  const wantsScores = mode === "scale" || mode === "both";
  const $ = (id) => document.getElementById(id);
  let current = null;   // the item on screen: {n, input, reference, left, right}
  let choice = null;
  let active = "left";  // the answer the digit keys score
  let sending = false;

  function show(state) {
    $("progress").max = Math.max(state.total, 1);
    $("progress").value = state.done;
    $("progress-text").textContent = `${state.done} of ${state.total} done`;
    current = state.item;
    if (!current) {
      $("work").hidden = true;
      $("done").style.display = "block";
      return;
    }
    $("input").textContent = current.input;
    $("reference-block").hidden = !current.reference;
    $("reference").textContent = current.reference || "";
    $("left").textContent = current.left;
    $("right").textContent = current.right;
    choice = null;
    document.querySelectorAll("[data-choice]").forEach((b) => b.setAttribute("aria-pressed", "false"));
    document.querySelectorAll("input[type=radio]").forEach((r) => { r.checked = false; });
    $("comment").value = "";
    setActive("left");
    $("work").hidden = false;
    update();
    window.scrollTo(0, 0);
  }

  function score(side) {
    const checked = document.querySelector(`input[name=${side}_score]:checked`);
    return checked ? Number(checked.value) : null;
  }

  function complete() {
    return (!wantsChoice || choice !== null) && (!wantsScores || (score("left") && score("right")));
  }

  function update() { $("submit").disabled = !complete() || sending; }

  function setActive(side) {
    active = side;
    if (!wantsScores) return;
    $("answer-left").classList.toggle("active", side === "left");
    $("answer-right").classList.toggle("active", side === "right");
  }

  function choose(value) {
    choice = value;
    document.querySelectorAll("[data-choice]").forEach((b) =>
      b.setAttribute("aria-pressed", String(b.dataset.choice === value)));
    update();
  }

  function setScore(side, value) {
    const radio = document.querySelector(`input[name=${side}_score][value="${value}"]`);
    if (radio) radio.checked = true;
    if (side === "left") setActive("right");
    update();
  }

  async function call(path, options) {
    const response = await fetch(base + path, Object.assign({ cache: "no-store" }, options));
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = body.error ? body.error + (body.hint ? ". " + body.hint : "") : `error ${response.status}`;
      throw Object.assign(new Error(detail), { status: response.status });
    }
    return body;
  }

  async function send() {
    if (!current || !complete() || sending) return;
    sending = true;
    update();
    const rating = { n: current.n, comment: $("comment").value || null };
    if (wantsChoice) rating.choice = choice;
    if (wantsScores) { rating.left_score = score("left"); rating.right_score = score("right"); }
    try {
      const state = await call("/ratings", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(rating),
      });
      $("message").textContent = "";
      show(state);
    } catch (error) {
      $("message").textContent = error.message;
      if (error.status === 409) show(await call("/next"));
    } finally {
      sending = false;
      update();
    }
  }

  document.querySelectorAll("[data-choice]").forEach((b) => b.addEventListener("click", () => choose(b.dataset.choice)));
  document.querySelectorAll("input[type=radio]").forEach((r) => r.addEventListener("change", update));
  $("submit").addEventListener("click", send);
  ["left", "right"].forEach((side) => $("answer-" + side).addEventListener("click", () => setActive(side)));

  const choiceKeys = { a: "left", b: "right", t: "tie", x: "both_bad" };
  document.addEventListener("keydown", (event) => {
    if (!current || event.altKey || event.metaKey) return;
    if (event.target === $("comment")) {
      if (event.key === "Escape") $("comment").blur();
      if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); send(); }
      return;
    }
    if (event.ctrlKey) return;
    const key = event.key.toLowerCase();
    if (wantsChoice && key in choiceKeys) choose(choiceKeys[key]);
    else if (wantsScores && /^[1-5]$/.test(key)) setScore(active, Number(key));
    else if (wantsScores && key === "arrowleft") setActive("left");
    else if (wantsScores && key === "arrowright") setActive("right");
    else if (key === "c") { event.preventDefault(); $("comment").focus(); }
    else if (key === "enter") { event.preventDefault(); send(); }
    else return;
    event.preventDefault();
  });

  call("/next").then(show).catch((error) => { $("message").textContent = error.message; });
})();
