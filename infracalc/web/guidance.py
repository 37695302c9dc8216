"""The console's guiding words, in French and English: uploads, success messages, confirmations, error pages.

Kept apart from the main catalogue (:mod:`.i18n`, which merges them) because they belong together:
what a page says after a change (``done.<what>``, shown from the ``?done=`` of the page a form
sends the browser back to), before a change that cannot be undone (``confirm.*``), while a file
streams in (``upload.*``), and when a browser asks for a page that does not exist or fails
(``error.*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

GUIDANCE: Final[Mapping[str, Mapping[str, str]]] = {
    "fr": {
        # imports from the project page
        "upload.title": "Importer un fichier",
        "upload.help": "Le fichier entre dans la quarantaine du projet. Sous gouvernance INFRACALC, un petit fichier "
        "de code (.py, .R, .sas, .do, .sql, .ipynb, .md, .txt, 256 Kio au plus) est disponible aussitôt ; tout "
        "autre fichier, et tout fichier sous gouvernance CASD, attend la relecture du personnel du CASD.",
        "upload.rules": "Ni archives (zip, tar, gz…) ni documents à macros ; {limit} au plus.",
        "upload.file": "Fichier",
        "upload.submit": "Importer",
        "upload.cancel": "Annuler l'envoi",
        "upload.sending": "Envoi de {name} : {sent} sur {total} ({percent} %)",
        "upload.checking": "Fichier reçu ; vérification en cours…",
        "upload.cancelled": "Envoi annulé : rien n'a été gardé.",
        "upload.choose": "Choisissez un fichier.",
        "upload.too_large": "Ce fichier fait {size} : la limite est {limit}.",
        "upload.failed": "L'envoi a échoué (connexion coupée) : rien n'a été gardé. Réessayez.",
        "upload.needs_script": "L'import depuis le navigateur demande JavaScript. Sinon, depuis un terminal : "
        "infracalc import {project} FICHIER.",
        "upload.signed_out": "Votre session a pris fin : rechargez la page pour vous reconnecter, puis réessayez.",
        "upload.refused": "Import refusé",
        "upload.detailed": "{sentence} Détail technique : {detail}",
        "upload.refused.file_name": "Ce nom de fichier n'est pas accepté.",
        "upload.refused.too_large": "Le fichier dépasse la taille acceptée.",
        "upload.refused.empty": "Le fichier est vide.",
        "upload.refused.archive": "Les archives ne sont pas acceptées : importez les fichiers eux-mêmes.",
        "upload.refused.macros": "Les documents à macros ne sont pas acceptés : enregistrez-le sans macros.",
        "upload.refused.type_mismatch": "L'extension du fichier ne correspond pas à son contenu.",
        "upload.refused.office_document": "Ce document bureautique est endommagé ou n'est pas sûr.",
        "upload.refused.interrupted": "L'envoi a été interrompu avant la fin du fichier : rien n'a été gardé.",
        "upload.refused.storage": "Le stockage n'a pas pu recevoir le fichier : réessayez plus tard.",
        "upload.refused.media_type": "Le fichier doit être envoyé tel quel.",
        "upload.refused.other": "Le fichier n'a pas été importé.",
        # what a page says after a change
        "done.imported_in_review": "{subject} est importé : il attend la relecture du personnel du CASD.",
        "done.imported_released": "{subject} est importé et disponible dans les bulles du projet.",
    },
    "en": {
        "upload.title": "Import a file",
        "upload.help": "The file enters the project's quarantine. Under INFRACALC governance, a small code file (.py, "
        ".R, .sas, .do, .sql, .ipynb, .md, .txt, at most 256 KiB) is available at once; any other file, and every "
        "file under CASD governance, waits for CASD staff to review it.",
        "upload.rules": "No archives (zip, tar, gz…) and no documents with macros; {limit} at most.",
        "upload.file": "File",
        "upload.submit": "Import",
        "upload.cancel": "Cancel the upload",
        "upload.sending": "Sending {name}: {sent} of {total} ({percent} %)",
        "upload.checking": "File received; checking it…",
        "upload.cancelled": "Upload cancelled: nothing was kept.",
        "upload.choose": "Choose a file.",
        "upload.too_large": "This file is {size}: the limit is {limit}.",
        "upload.failed": "The upload failed (the connection was cut): nothing was kept. Try again.",
        "upload.needs_script": "Importing from the browser needs JavaScript. Otherwise, from a terminal: "
        "infracalc import {project} FILE.",
        "upload.signed_out": "Your session ended: reload the page to sign in again, then try again.",
        "upload.refused": "Import refused",
        "upload.detailed": "{sentence} Technical detail: {detail}",
        "upload.refused.file_name": "This file name is not accepted.",
        "upload.refused.too_large": "The file is larger than accepted.",
        "upload.refused.empty": "The file is empty.",
        "upload.refused.archive": "Archives are not accepted: import the files themselves.",
        "upload.refused.macros": "Documents with macros are not accepted: save it without macros.",
        "upload.refused.type_mismatch": "The file's extension does not match its content.",
        "upload.refused.office_document": "This office document is damaged or unsafe.",
        "upload.refused.interrupted": "The upload was interrupted before the end of the file: nothing was kept.",
        "upload.refused.storage": "The storage could not take the file: try again later.",
        "upload.refused.media_type": "The file must be sent as it is.",
        "upload.refused.other": "The file was not imported.",
        "done.imported_in_review": "{subject} is imported: it waits for CASD staff to review it.",
        "done.imported_released": "{subject} is imported and available in the project's bubbles.",
    },
}

__all__ = ["GUIDANCE"]
