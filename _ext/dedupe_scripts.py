"""Drop repeated <script> entries from each page.

sphinx-thebe 0.3.1 adds its inline configuration script once per
``env-before-read-docs`` event, and Jupyter Book's build fires that event twice, so
every page declared ``const THEBE_JS_URL`` twice and the browser logged
"Identifier 'THEBE_JS_URL' has already been declared". Keeping the first of each
identical script removes the error without changing what the page loads.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        key = (getattr(script, "filename", None) or "", tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: Sphinx keeps a reference to this list


def setup(app):
    # Early: html-page-context is emitted with emit_firstresult, so a later handler that
    # returns a template name would stop the chain before this one ran.
    app.connect("html-page-context", _dedupe, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
