/* path: not written yet */
