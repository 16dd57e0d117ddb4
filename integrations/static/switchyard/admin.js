// Copy buttons: <button class="sy-copy" data-copy-target="ID"> copies that element's text.
document.addEventListener("click", function (event) {
  var button = event.target.closest(".sy-copy");
  if (!button) { return; }
  event.preventDefault();
  var source = document.getElementById(button.dataset.copyTarget);
  if (!source) { return; }
  var text = source.textContent;
  var done = function () { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
  } else { fallback(text); done(); }
});

function fallback(text) {
  var area = document.createElement("textarea");
  area.value = text;
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  document.body.removeChild(area);
}
