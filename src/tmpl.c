/* tmpl: not written yet */
