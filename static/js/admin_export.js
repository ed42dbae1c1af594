/* The dictionary export page: 全选 toggles every column check box. django-import-export binds it
   with an inline onchange attribute, which the Content-Security-Policy (no inline scripts) blocks. */
document.addEventListener("change", function (event) {
  var toggle = event.target;
  if (!toggle.classList || !toggle.classList.contains("select-toggle")) return;
  document.querySelectorAll('.selectable-field-export-row input[type="checkbox"]').forEach(function (box) {
    box.checked = toggle.checked;
  });
});
